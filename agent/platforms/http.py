"""Plumbing both platform clients share: one ``httpx.Client``, the error classification, the streaming download.

The classification table (PLATFORMS.md, "Both") lives here and nowhere else:

=====================================================  ==============================================
what happened                                          raised
=====================================================  ==============================================
connect error, DNS failure, connection dropped         ``TransientError(kind="network")``
connect / read / write / pool timeout                  ``TransientError(kind="timeout")``
HTTP 408, 425, 429, any 5xx                            ``TransientError(kind="http")``, ``retry_after``
                                                       from ``Retry-After`` (seconds or an HTTP-date)
HTTP 401, 403 (from the platform itself)               ``AuthError(kind="auth")``
HTTP 400, 404, 413, 422 and every other 4xx            ``PermanentError(kind="http")``
a 2xx whose body is not JSON                           ``TransientError(kind="protocol")`` (a proxy page)
a 3xx on an API call (never followed)                  ``PermanentError(kind="http")``: fix base_url
=====================================================  ==============================================

A download is different in one way: the URL is usually a signed object-store link on another host, so a
401/403/410 there means "the link expired", not "the key is wrong" (``PermanentError(kind="output")``).

The API key is attached by an ``httpx.Auth`` that only sends it to the platform's own origin (httpx itself strips
it when a redirect leaves the origin), and every message built here is scrubbed of the key before it is raised.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import math
import mimetypes
import os
import re
import socket
import tempfile
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from agent import __version__
from agent.config import EasyAIPlatformConfig, HaiyiPlatformConfig
from agent.platforms.base import (
    AuthError,
    Download,
    OutputType,
    PermanentError,
    PlatformError,
    RemoteOutput,
    TransientError,
)

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = f"edge-agent/{__version__}"
BODY_PREVIEW_BYTES = 120

# ------------------------------------------------------------------------------------ the classification table

TRANSIENT_STATUSES = frozenset({408, 425, 429})  # and every 5xx
AUTH_STATUSES = frozenset({401, 403})
# 400/404/413/422 and every other 4xx are permanent: the same request would get the same answer.


def error_for_status(status: int, message: str, *, retry_after: float | None = None) -> PlatformError | None:
    """The error an HTTP status stands for, or None for a success (1xx-3xx)."""
    if status < 400:
        return None
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientError(message, status=status, retry_after=retry_after, kind="http")
    if status in AUTH_STATUSES:
        return AuthError(message, status=status, kind="auth")
    return PermanentError(message, status=status, kind="http")


def error_for_exception(exc: httpx.HTTPError, host: str) -> TransientError:
    """A request that got no HTTP answer at all: always worth retrying."""
    what = type(exc).__name__
    detail = str(exc) or what
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return TransientError(f"{host}: no answer ({what})", kind="network")  # never reached: unreachable
    if isinstance(exc, httpx.TimeoutException):  # reached, but the answer took too long
        return TransientError(f"{host}: timed out ({what})", kind="timeout")
    return TransientError(f"{host}: no answer ({what}: {detail})", kind="network")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date; None when absent or garbage."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(secs):
        return None
    return max(0.0, secs)


# ------------------------------------------------------------------------------------ reply parsing


def sanitise(raw: bytes | str, limit: int = BODY_PREVIEW_BYTES) -> str:
    """The first bytes of a body, printable and on one line, for an error message."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "replace")
    text = raw[:limit].decode("utf-8", "replace")
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text + ("..." if len(raw) > limit else "")


def error_message_from(body: Any) -> str | None:
    """The platform's own words from an error body: OpenAI, NestJS, Haiyi and plain shapes."""
    if isinstance(body, str):
        return body or None
    if not isinstance(body, dict):
        return None
    err = body.get("error")
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])
    for key in ("message", "msg", "detail"):  # NestJS: {"statusCode", "message", "error": "Not Found"}
        val = body.get(key)
        if isinstance(val, list):  # NestJS validation errors: a list of strings
            val = "; ".join(str(v) for v in val)
        if val:
            return str(val)
    if isinstance(err, str) and err:
        return err
    data = body.get("data")
    if isinstance(data, dict):
        return error_message_from(data)
    return None


@dataclass
class Reply:
    """A JSON answer from the platform (status < 400)."""

    status: int
    body: Any  # parsed JSON: dict, list, str, number, or None for an empty body


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str | None:
    """A task id or name as text; ints are common (Haiyi), bools and containers are not ids."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        text = str(value).strip()
        return text or None
    return None


def as_percent(value: Any) -> int | None:
    """Progress 0-100 from a number (a float <= 1 is a fraction); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        value *= 100
    return int(min(100, max(0, round(value))))


def stringify(value: Any) -> str | None:
    """A param as a multipart field: scalars as text, bools as true/false, containers as JSON, None skipped."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# ------------------------------------------------------------------------------------ media types

_EXTENSION_TYPES: dict[str, OutputType] = {
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".webp": "image", ".bmp": "image", ".avif": "image",
    ".heic": "image", ".tif": "image", ".tiff": "image",
    ".mp4": "video", ".webm": "video", ".gif": "video", ".mov": "video", ".mkv": "video", ".avi": "video",
    ".wav": "audio", ".mp3": "audio", ".flac": "audio", ".ogg": "audio", ".m4a": "audio", ".aac": "audio",
    ".glb": "3d", ".gltf": "3d", ".obj": "3d", ".fbx": "3d", ".ply": "3d", ".stl": "3d",
}

_SUFFIX_FOR_TYPE = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif", "image/bmp": ".bmp",
    "image/tiff": ".tif", "image/avif": ".avif", "image/heic": ".heic",
    "video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov", "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
    "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/vnd.wave": ".wav",
    "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/ogg": ".ogg", "audio/flac": ".flac", "audio/mp4": ".m4a",
    "model/gltf-binary": ".glb", "model/gltf+json": ".gltf", "model/obj": ".obj", "model/stl": ".stl",
}
_MEDIA_FAMILIES: dict[str, OutputType] = {"image": "image", "video": "video", "audio": "audio", "model": "3d"}


def type_from_name(name_or_url: str) -> OutputType:
    """Output type guessed from a file name or URL (its path, else a ``filename=`` query parameter)."""
    try:
        url = httpx.URL(name_or_url)
        candidates = [url.path, url.params.get("filename") or ""]
    except Exception:  # not a URL at all: a bare name
        candidates = [name_or_url]
    for cand in candidates:
        suffix = os.path.splitext(cand.lower())[1]
        if suffix in _EXTENSION_TYPES:
            return _EXTENSION_TYPES[suffix]
    return "unknown"


def sniff(head: bytes) -> str | None:
    """The media type the first bytes of a file prove, ``text/html`` for a web page, else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(head[8:12])
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic"
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"glTF"):
        return "model/gltf-binary"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"BM") and len(head) >= 14:
        return "image/bmp"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "text/html"
    return None


def _media_type_of(declared: str, head: bytes) -> str:
    """The real type of a download, or PermanentError saying why it is not media."""
    sniffed = sniff(head)
    start = head[:512].lstrip().lower()
    if "svg" in declared or "xml" in declared or start.startswith(b"<?xml") or b"<svg" in start:
        # SVG is a document that can carry script: never stored or served as a result
        raise PermanentError(f"output is SVG/XML, not a raster image ({declared or 'no Content-Type'})",
                             kind="output")
    if declared == "text/html" or sniffed == "text/html":
        raise PermanentError(
            f"output is a web page, not media (text/html): {sanitise(head)!r}", kind="output"
        )
    if sniffed is not None:
        return sniffed  # the bytes decide: a mislabelled PNG is still a PNG
    if declared.split("/")[0] in _MEDIA_FAMILIES:
        return declared
    shown = declared or "no Content-Type"
    raise PermanentError(f"output is not a recognisable image, video or audio file ({shown})", kind="output")


def _suffix_for(media_type: str) -> str:
    return _SUFFIX_FOR_TYPE.get(media_type) or mimetypes.guess_extension(media_type) or ".bin"


def _final_path(dest: Path, suffix: str) -> Path:
    if dest.suffix.lower() in _EXTENSION_TYPES or dest.suffix.lower() == ".bin":
        return dest.with_suffix(suffix)
    return dest.with_name(dest.name + suffix)


# ------------------------------------------------------------------------------------ the HTTP session


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host, port)


class BearerForOrigin(httpx.Auth):
    """``Authorization: Bearer <key>`` on requests to the platform's origin only; never in a repr."""

    def __init__(self, key: SecretStr | None, origin: tuple[str, str, int | None]) -> None:
        self._key = key
        self._origin = origin

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._key is not None and _origin(request.url) == self._origin:
            request.headers["Authorization"] = f"Bearer {self._key.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "<bearer auth>"


class PlatformHTTP:
    """One keep-alive ``httpx.Client`` for one platform, with the key, the timeouts and the classification."""

    def __init__(
        self,
        cfg: EasyAIPlatformConfig | HaiyiPlatformConfig,
        api_key: SecretStr | None,
        *,
        user_agent: str | None = None,
    ) -> None:
        self.base_url = cfg.base_url.rstrip("/")
        base = httpx.URL(self.base_url)
        self.host = base.host if base.port is None else f"{base.host}:{base.port}"
        self.max_download_mb = cfg.max_download_mb
        self._secret = api_key.get_secret_value() if api_key is not None else ""
        self._origin = _origin(base)
        self._client = httpx.Client(
            auth=BearerForOrigin(api_key, self._origin),
            timeout=httpx.Timeout(
                connect=cfg.connect_timeout_s,
                read=cfg.read_timeout_s,
                write=cfg.read_timeout_s,
                pool=cfg.connect_timeout_s,
            ),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4, keepalive_expiry=30.0),
            headers={"User-Agent": user_agent or DEFAULT_USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,  # API calls never follow; downloads opt in per request
            event_hooks={"request": [self._refuse_local_targets]},
        )

    def _refuse_local_targets(self, request: httpx.Request) -> None:
        """Every request (each redirect hop too) to a host other than the platform's own may not reach this
        device's loopback or link-local addresses (e.g. the agent's own API, a cloud metadata service): an output
        URL is the platform's word, not ours."""
        if _origin(request.url) == self._origin:
            return
        host = request.url.host
        try:
            addrs = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except (OSError, UnicodeError):
            return  # unresolvable: the request itself fails with a network error
        for a in addrs:
            ip = ipaddress.ip_address(a.split("%")[0])
            if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
                raise PermanentError(f"output link points at a local address ({host} -> {ip}); refused",
                                     kind="output")

    def __repr__(self) -> str:
        return f"PlatformHTTP({self.base_url!r})"

    # ---------------------------------------------------------------- URLs

    def url(self, path: str) -> str:
        """``base_url`` joined with an API path, whatever slashes either side has."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def resolve(self, ref: str) -> str:
        """An output reference as an absolute URL: absolute as is, ``/view?...`` under base_url, bare names via
        ComfyUI's ``/api/view`` route."""
        ref = ref.strip()
        if re.match(r"^https?://", ref, re.IGNORECASE):
            return ref
        if ref.startswith("//"):
            return f"{httpx.URL(self.base_url).scheme}:{ref}"
        if ref.startswith("/"):
            return self.url(ref)
        return self.url(f"/api/view?type=output&filename={quote(ref, safe='')}")

    # ---------------------------------------------------------------- errors

    def scrub(self, text: str) -> str:
        """Belt and braces: the key never leaves in a message, even if a server echoes it back."""
        return text.replace(self._secret, "***") if self._secret else text

    def _fail(self, err: PlatformError) -> PlatformError:
        if self._secret and self._secret in err.message:
            return type(err)(self.scrub(err.message), status=err.status, retry_after=err.retry_after, kind=err.kind)
        return err

    def error_from_response(self, resp: httpx.Response, body: bytes) -> PlatformError | None:
        """The classified error for an answer (None for a success)."""
        if resp.status_code < 400:
            return None
        parsed = _json_or_none(body)
        words = error_message_from(parsed) if parsed is not None else None
        if words is not None:  # mask the key before cutting, or a cut key would leak its first part
            words = sanitise(self.scrub(words), 300)
        elif body.strip():
            words = sanitise(self.scrub(body.decode("utf-8", "replace")))
        else:
            words = "(empty body)"
        message = f"HTTP {resp.status_code} from {self.host}: {words}"
        err = error_for_status(
            resp.status_code, message, retry_after=parse_retry_after(resp.headers.get("Retry-After"))
        )
        assert err is not None
        return self._fail(err)

    # ---------------------------------------------------------------- requests

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        """One API call; returns the parsed JSON of a success or raises the classified error."""
        url = self.url(path)
        try:
            with self._client.stream(method, url, **kwargs) as resp:
                body = _read_capped(resp, MAX_REPLY_BYTES)
        except httpx.HTTPError as e:
            raise self._fail(error_for_exception(e, self.host)) from None
        if body is None:
            raise self._fail(PermanentError(
                f"HTTP {resp.status_code} from {self.host}: reply larger than {MAX_REPLY_BYTES // 1_000_000} MB",
                status=resp.status_code, kind="protocol"))
        err = self.error_from_response(resp, body)
        if err is not None:
            log.debug("%s %s -> %s", method, path, err.message)
            raise err
        if resp.is_redirect:  # API calls never follow: a moved platform is a config problem, not a retry
            where = sanitise(resp.headers.get("Location", "?"), 200)
            raise self._fail(PermanentError(
                f"HTTP {resp.status_code} from {self.host}: redirected to {where}; check base_url",
                status=resp.status_code, kind="http",
            ))
        if not body.strip():
            return Reply(resp.status_code, None)
        parsed = _json_or_none(body)
        if parsed is None:
            raise self._fail(
                TransientError(
                    f"HTTP {resp.status_code} from {self.host}: not JSON: {sanitise(body)!r}",
                    status=resp.status_code,
                    kind="protocol",
                )
            )
        return Reply(resp.status_code, parsed)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.request("POST", path, **kwargs)

    def probe(self, path: str) -> None:
        """Any HTTP answer means reachable; no answer is a TransientError."""
        try:
            resp = self._client.get(self.url(path))
        except httpx.HTTPError as e:
            raise self._fail(error_for_exception(e, self.host)) from None
        self.server_date = resp.headers.get("Date")

    server_date: str | None = None  # the Date header of the last probe (doctor's clock check)

    # ---------------------------------------------------------------- downloads

    def download(self, output: RemoteOutput, dest: Path) -> Download:
        """Stream one output next to ``dest`` (size cap, type check), fsync, rename; return what was written."""
        if output.type == "text":
            raise ValueError("a text output is written by the worker, not downloaded")
        if not output.url:
            raise PermanentError("output has no URL to download", kind="output")
        url = self.resolve(output.url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._client.stream("GET", url, follow_redirects=True, headers={"Accept": "*/*"}) as resp:
                return self._save(resp, output, dest)
        except httpx.HTTPError as e:
            raise self._fail(error_for_exception(e, httpx.URL(url).host)) from None

    def _save(self, resp: httpx.Response, output: RemoteOutput, dest: Path) -> Download:
        host = resp.url.host
        status = resp.status_code
        if status == 401 and _origin(resp.url) == self._origin:
            raise self._fail(AuthError(f"HTTP 401 from {self.host} while downloading an output", status=401,
                                       kind="auth"))
        if status in (401, 403, 410):
            # A signed link that expired answers 403 (S3/OSS/COS) or 410: the key is not the problem.
            raise PermanentError(f"output link expired or forbidden (HTTP {status})", status=status, kind="output")
        if status >= 400:
            body = resp.read()[:1024]
            err = self.error_from_response(resp, body)
            assert err is not None
            if isinstance(err, PermanentError):
                err = PermanentError(f"output download failed: {err.message}", status=status, kind="output")
            raise self._fail(err)
        cap_mb = self.max_download_mb
        cap = cap_mb * 1024 * 1024
        length = resp.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > cap:
            raise PermanentError(f"output larger than {cap_mb} MB ({int(length)} bytes announced)", kind="output")
        declared = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()

        chunks = resp.iter_bytes(64 * 1024)
        head = _read_head(chunks, 64)
        media_type = _media_type_of(declared, head)
        path = _final_path(dest, _suffix_for(media_type))
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in _chain(head, chunks):
                    size += len(chunk)
                    if size > cap:
                        raise PermanentError(f"output larger than {cap_mb} MB", kind="output")
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            if size == 0:
                raise PermanentError(f"output from {host} is empty", kind="output")
            os.replace(tmp_name, path)
        except BaseException:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(path.parent)
        kind: OutputType = _MEDIA_FAMILIES.get(media_type.split("/")[0], "unknown")
        if media_type == "image/gif" and output.type == "video":
            kind = "video"  # the animated-GIF stand-in for a video render
        return Download(path=path, content_type=media_type, size=size, type=kind)

    def close(self) -> None:
        self._client.close()


MAX_REPLY_BYTES = 8_000_000  # an API answer is small JSON; a bigger one is a broken (or hostile) server


def _read_capped(resp: httpx.Response, cap: int) -> bytes | None:
    """The body, or None once it passes `cap` bytes (the rest is never read into memory)."""
    chunks, size = [], 0
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json_or_none(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _read_head(chunks: Iterator[bytes], want: int) -> bytes:
    """At least ``want`` bytes from the stream (fewer only at its end), for sniffing."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= want:
            break
    return head


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)



class HttpClientBase:
    """What both platform clients share: one PlatformHTTP, downloads, the probe's Date header, close()."""

    kind = ""
    supports_cancel = False

    def __init__(self, name: str, cfg: Any, api_key: SecretStr | None, *, user_agent: str | None = None) -> None:
        self.name = name
        self.cfg = cfg
        self._http = PlatformHTTP(cfg, api_key, user_agent=user_agent)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self._http.base_url!r})"

    @property
    def server_date(self) -> str | None:
        return self._http.server_date

    def download(self, output: RemoteOutput, dest: Path) -> Download:
        return self._http.download(output, dest)

    def close(self) -> None:
        self._http.close()
