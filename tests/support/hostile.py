"""A deliberately hostile platform server over real HTTP on loopback, for tests of the client's limits.

Each path answers the way its behaviour says: a fixed reply, a body dripped a byte at a time, a gzip bomb, a huge
body streamed without being held in memory, a redirect, a reply that echoes the bearer key back, ... The server
counts hits and concurrent requests per path, so a test can prove what never reached it and how many ran at once.

    with HostileServer() as srv:
        srv.route("/v1/ai/result/t1", json_reply({"status": "running"}))
        srv.route("/out.png", drip(PNG, every_s=0.5))
        client = make_client("easy", EasyAIPlatformConfig(kind="easyai", base_url=srv.url), SecretStr(KEY))

It only ever listens on 127.0.0.x. Unknown paths answer 404.
"""

from __future__ import annotations

import functools
import gzip
import json
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KEY = "sk-live-9Qz4Tn7Wc2Lp8Rv5Xb3Md6Hk"  # the key clients send it: 32 characters, any 8 of them in a row are a leak
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def bearer(self) -> str:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else ""


Body = bytes | Callable[[Request], bytes]
# A behaviour writes the whole answer through the handler (status line, headers, body).
Behaviour = Callable[["_Handler", Request], None]


def _body(body: Body, req: Request) -> bytes:
    return body(req) if callable(body) else body


def reply(
    body: Body = b"",
    *,
    status: int = 200,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
) -> Behaviour:
    """A plain answer; ``body`` may be a function of the request (e.g. to echo the bearer key)."""

    def run(h: _Handler, req: Request) -> None:
        data = _body(body, req)
        h.send_response(status)
        if content_type is not None:
            h.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return run


def json_reply(obj: Any | Callable[[Request], Any], *, status: int = 200) -> Behaviour:
    return reply(lambda req: json.dumps(obj(req) if callable(obj) else obj).encode(), status=status)


def redirect(location: str | Callable[[Request], str], *, status: int = 302) -> Behaviour:
    def run(h: _Handler, req: Request) -> None:
        h.send_response(status)
        h.send_header("Location", location(req) if callable(location) else location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return run


def drip(
    body: bytes, *, every_s: float, content_type: str = "image/png", first: int = 0, headers_after_s: float = 0.0
) -> Behaviour:
    """Headers (after ``headers_after_s``), then ``first`` bytes at once, then one byte every ``every_s`` seconds."""

    def run(h: _Handler, req: Request) -> None:
        time.sleep(headers_after_s)
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[:first])
        h.wfile.flush()
        for i in range(first, len(body)):
            time.sleep(every_s)
            h.wfile.write(body[i : i + 1])
            h.wfile.flush()

    return run


def stall(seconds: float) -> Behaviour:
    """Accept the request, then say nothing for ``seconds`` (no status line), then close."""

    def run(h: _Handler, req: Request) -> None:
        time.sleep(seconds)
        h.close_connection = True

    return run


def huge(size: int, *, prefix: bytes = b"", content_type: str = "image/png", chunk: int = 1 << 20) -> Behaviour:
    """``prefix`` then zeros up to ``size`` bytes, streamed (never held in memory), no Content-Length."""

    def run(h: _Handler, req: Request) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        h.wfile.write(prefix)
        left = size - len(prefix)
        zeros = bytes(chunk)
        while left > 0:
            n = min(left, chunk)
            h.wfile.write(zeros[:n])
            left -= n

    return run


@functools.lru_cache(maxsize=4)
def gzip_bomb(decoded_size: int, *, prefix: bytes = b"") -> bytes:
    """A valid gzip body that decodes to ``prefix`` plus zeros, ``decoded_size`` bytes in all (~1/1000 of that on the
    wire: 2 GB from 2 MB). Built in well under a second: after a full flush every 1 MiB block of zeros compresses to
    the same bytes, so one block is compressed and repeated."""
    mib = bytes(1 << 20)
    n, rest = divmod(decoded_size - len(prefix), len(mib))
    z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw deflate: the gzip framing is written here
    head = z.compress(prefix) + z.flush(zlib.Z_FULL_FLUSH)
    block = z.compress(mib) + z.flush(zlib.Z_FULL_FLUSH)
    tail = z.compress(bytes(rest)) + z.flush()
    crc = zlib.crc32(prefix)
    for _ in range(n):
        crc = zlib.crc32(mib, crc)
    crc = zlib.crc32(bytes(rest), crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return b"".join([header, head, block * n, tail, struct.pack("<II", crc, decoded_size & 0xFFFFFFFF)])


def gzipped(
    body: bytes, *, content_type: str = "application/json", status: int = 200, encoding: str = "gzip"
) -> Behaviour:
    """``body`` (already compressed, e.g. a ``gzip_bomb``) sent with ``Content-Encoding: <encoding>``."""
    return reply(body, status=status, content_type=content_type, headers={"Content-Encoding": encoding})


def gzip_of(data: bytes) -> bytes:
    return gzip.compress(data)


def deep_json(depth: int, *, open_: str = "[", close: str = "]") -> bytes:
    """``[[[[...]]]]`` nested ``depth`` deep (or any other opener/closer pair, e.g. ``{"data":`` / ``}``)."""
    return (open_ * depth + close * depth).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *a: Any) -> None:
        pass

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = self.headers.get("Content-Length", "0")
        body = self.rfile.read(int(length)) if length.isdigit() else b""
        req = Request(
            self.command, parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()}, body
        )
        owner = self.server.owner
        behaviour = owner.behaviour_for(req.path)
        owner._enter(req)
        try:
            if behaviour is None:
                reply(b'{"message": "Not Found"}', status=404)(self, req)
            else:
                behaviour(self, req)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a deadline, a size cap): that is the point
        finally:
            owner._leave(req)

    do_GET = do_POST = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HostileServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that hung up on a hostile answer did what it should
        super().handle_error(request, client_address)


class HostileServer:
    """A threaded HTTP server on ``host`` (127.0.0.x) and a free port; ``route(path, behaviour)`` sets a path."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        assert host.startswith("127.0.0."), "tests only ever listen on loopback"
        self._routes: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        self.hits: dict[str, int] = {}
        self.active: dict[str, int] = {}
        self.max_active: dict[str, int] = {}
        self.requests: list[Request] = []
        self._srv = _Server((host, 0), _Handler)
        self._srv.owner = self
        self.host, self.port = host, self._srv.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._srv.serve_forever, name="hostile", daemon=True)
        self._thread.start()

    def route(self, path: str, behaviour: Behaviour) -> str:
        """Answer ``path`` with ``behaviour`` from now on; returns its absolute URL."""
        with self._lock:
            self._routes[path] = behaviour
        return self.url + path

    def behaviour_for(self, path: str) -> Behaviour | None:
        with self._lock:
            return self._routes.get(path)

    def _enter(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)
            self.hits[req.path] = self.hits.get(req.path, 0) + 1
            n = self.active[req.path] = self.active.get(req.path, 0) + 1
            self.max_active[req.path] = max(self.max_active.get(req.path, 0), n)

    def _leave(self, req: Request) -> None:
        with self._lock:
            self.active[req.path] -= 1

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Clients:
    """``clients(base_url, kind="easyai", **platform_cfg)`` -> a platform client with ``KEY``; ``close()`` them all."""

    def __init__(self) -> None:
        self.made: list[Any] = []

    def __call__(self, base_url: str, kind: str = "easyai", **cfg: Any) -> Any:
        from pydantic import SecretStr

        from agent.config import EasyAIPlatformConfig, HaiyiPlatformConfig
        from agent.platforms import make_client

        model = EasyAIPlatformConfig if kind == "easyai" else HaiyiPlatformConfig
        client = make_client(kind, model(kind=kind, base_url=base_url, **cfg), SecretStr(KEY))
        self.made.append(client)
        return client

    def close(self) -> None:
        for c in self.made:
            c.close()


def image(url: str) -> Any:
    """A remote image output at `url`, as a client would download it."""
    from agent.platforms.base import RemoteOutput

    return RemoteOutput(type="image", url=url)
