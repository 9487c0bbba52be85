"""HTTP plumbing shared by both platforms: the parsed request, the reply, body formats and error pages.

Nothing here knows about EasyAI or Haiyi; the platform modules turn `BadRequest` into their own error shape.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from agent.simulator.config import SimConfig


class BadRequest(Exception):
    """The client sent something the endpoint cannot use; each platform renders it in its own error shape."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Part:
    """One multipart field: a file when it has a filename (or a non-text content type), else a string."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def is_file(self) -> bool:
        return self.filename is not None or bool(self.content_type and not self.content_type.startswith("text/"))

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


@dataclass
class Request:
    method: str
    path: str  # normalised: no repeated slashes, no trailing slash
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    base_url: str  # "http://<Host the client used>", for absolute URLs in replies
    cfg: SimConfig  # one snapshot for the whole request
    params: dict[str, str] = field(default_factory=dict)  # route parameters, e.g. {"id": "230"}

    def q(self, name: str, default: str = "") -> str:
        vals = self.query.get(name)
        return vals[0] if vals else default

    def bearer(self) -> str | None:
        auth = self.headers.get("Authorization", "") or ""
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").strip()

    def json(self) -> Any:
        if not self.body.strip():
            raise BadRequest("request body is empty; JSON expected")
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise BadRequest(f"invalid JSON body: {e}") from None

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise BadRequest("JSON body must be an object")
        return data

    def form(self) -> list[Part]:
        """Multipart, urlencoded or (leniently) a JSON object, as a list of parts in the order sent."""
        ctype = self.content_type.lower()
        if ctype.startswith("multipart/form-data"):
            return parse_multipart(self.body, self.content_type)
        if ctype.startswith("application/json"):
            return [
                Part(str(k), (v if isinstance(v, str) else json.dumps(v)).encode())
                for k, v in self.json_object().items()
            ]
        if ctype.startswith("application/x-www-form-urlencoded") or not ctype:
            pairs = urllib.parse.parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)
            return [Part(k, v.encode()) for k, v in pairs]
        raise BadRequest(f"unsupported Content-Type {ctype!r}; multipart/form-data expected")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None  # stream this file as the body
    drop: bool = False  # close the connection without sending anything
    close: bool = False  # send, then close the connection


def json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return Reply(status=status, body=body, headers=dict(headers or {}))


def html_reply(status: int, html: str, close: bool = False) -> Reply:
    return Reply(status=status, body=html.encode(), content_type="text/html; charset=utf-8", close=close)


def nginx_page(status: int, reason: str) -> str:
    """The error page nginx puts in front of an upstream that failed (502/504) or a body too large (413)."""
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )


def object_store_error(status: int, code: str, message: str, key: str) -> Reply:
    """What an object store (OSS / COS / S3) answers for an expired or forged link."""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{code}</Code>\n  <Message>{message}</Message>\n  <Key>{key}</Key>\n"
        "  <RequestId>00000000SIMULATOR</RequestId>\n</Error>\n"
    )
    return Reply(status=status, body=xml.encode(), content_type="application/xml")


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    _, opts = parse_options_header(content_type)
    boundary = opts.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart body without a boundary")
    parts: list[Part] = []
    headers: dict[bytes, bytes] = {}
    hfield: list[bytes] = []
    hvalue: list[bytes] = []
    data: list[bytes] = []
    ended: list[bool] = []

    def on_part_begin() -> None:
        headers.clear()
        data.clear()

    def on_header_field(d: bytes, s: int, e: int) -> None:
        hfield.append(d[s:e])

    def on_header_value(d: bytes, s: int, e: int) -> None:
        hvalue.append(d[s:e])

    def on_header_end() -> None:
        headers[b"".join(hfield).strip().lower()] = b"".join(hvalue).strip()
        hfield.clear()
        hvalue.clear()

    def on_part_data(d: bytes, s: int, e: int) -> None:
        data.append(d[s:e])

    def on_part_end() -> None:
        _, disp = parse_options_header(headers.get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename")
        ctype = headers.get(b"content-type")
        parts.append(
            Part(
                name=name,
                data=b"".join(data),
                filename=filename.decode("utf-8", "replace") if filename is not None else None,
                content_type=ctype.decode("latin-1").lower() if ctype else None,
            )
        )

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
        "on_end": lambda: ended.append(True),
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except (MultipartParseError, ValueError) as e:
        raise BadRequest(f"malformed multipart body: {e}") from None
    if not ended:
        raise BadRequest("malformed multipart body: no closing boundary")
    return parts


_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+/-]*)(?P<params>(;[^,;]*)*?)(?P<b64>;base64)?,(?P<payload>.*)$", re.S)


def decode_data_url(url: str) -> bytes:
    m = _DATA_URL.match(url.strip())
    if not m:
        raise BadRequest("malformed data: URL")
    payload = m.group("payload")
    if m.group("b64"):
        try:
            return base64.b64decode(re.sub(r"\s+", "", urllib.parse.unquote(payload)), validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("data: URL is not valid base64") from None
    return urllib.parse.unquote_to_bytes(payload)


_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


def base_url_from_host(host_header: str | None, fallback: str) -> str:
    """Absolute URLs in replies use the Host the client connected to (so "localhost" stays "localhost")."""
    host = (host_header or "").strip()
    return f"http://{host}" if host and _HOST.match(host) else fallback


def normalise_path(raw: str) -> tuple[str, dict[str, list[str]]]:
    """Collapse repeated slashes (clients glue a base URL ending in "/" onto "/v1/..."), drop a trailing one."""
    if raw.lower().startswith(("http://", "https://")):  # absolute-form request target
        parts = urllib.parse.urlsplit(raw)
        raw = parts.path + ("?" + parts.query if parts.query else "")
    raw = raw.split("#", 1)[0]
    path, _, query = raw.partition("?")
    path = re.sub(r"/{2,}", "/", "/" + urllib.parse.unquote(path))
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return path, urllib.parse.parse_qs(query, keep_blank_values=True)
