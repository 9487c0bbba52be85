"""The HTTP transport of the simulator: a threading stdlib server that tracks its connections (so an outage can
cut them) and a keep-alive request handler that reads bodies (size-capped, chunked or not) and writes replies.
What a request means is decided by ``Simulator.dispatch`` (server.py)."""

from __future__ import annotations

import logging
import shutil
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from agent.simulator.wire import Reply, html_reply, json_reply, nginx_page

if TYPE_CHECKING:
    from agent.simulator.server import Simulator

log = logging.getLogger("agent.simulator")

ONE_WRITE_MAX = 4 * 1024 * 1024  # a file up to this size goes out with its headers in one write
DRAIN_LIMIT = 256 * 1024 * 1024  # an oversized body up to this size is read and discarded before the 413


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 512  # a few hundred booths connecting at once must not overflow the backlog

    def __init__(self, addr: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(), a DNS lookup that can stall an offline box.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> None:
        """Cut open keep-alive connections so their handler threads end and clients see the outage."""
        with self.conn_lock:
            conns = list(self.connections)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SimServer6(SimServer):
    address_family = socket.AF_INET6


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real gateways
    server_version = "edge-agent-simulator"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection or a stalled upload is closed after this
    disable_nagle_algorithm = True  # TCP_NODELAY, as production servers set it
    server: SimServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _serve(self, head: bool = False) -> None:
        self._sent = False
        try:
            reply = self.server.sim.dispatch(self, head)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            return
        except Exception:
            log.exception("simulator handler failed: %s %s", self.command, self.path)
            reply = json_reply({"statusCode": 500, "message": "Internal server error (simulator bug)"}, 500)
            reply.close = True
        if not self._sent:
            try:
                self._send(reply, head)
            except (ConnectionError, TimeoutError):
                self.close_connection = True

    def _send(self, reply: Reply, head: bool) -> None:
        self._sent = True
        if reply.drop:
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(reply.status)
        size = reply.file.stat().st_size if reply.file is not None else len(reply.body)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(size))
        for k, v in reply.headers.items():
            self.send_header(k, v)
        if reply.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        # headers and body leave in one write, as a production server sends them: two small writes would make
        # the client's delayed ACK hold the second one back (40 ms on Linux) whenever Nagle is on at either end
        pending: list[bytes] = vars(self)["_headers_buffer"]  # the stdlib's header lines, not yet written
        pending.append(b"\r\n")
        if head:
            self.flush_headers()
            return
        if reply.file is not None and size > ONE_WRITE_MAX:
            self.flush_headers()
            with reply.file.open("rb") as fh:
                shutil.copyfileobj(fh, self.wfile, 64 * 1024)
            return
        pending.append(reply.file.read_bytes() if reply.file is not None else reply.body)
        self.flush_headers()

    # ----------------------------------------------------------------------------------------- body

    def read_body(self, limit: int) -> bytes | Reply:
        """The request body, or a Reply (413 / 400) when it cannot be accepted."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
            if length < 0:
                raise ValueError
        except ValueError:
            r = json_reply({"statusCode": 400, "message": "bad Content-Length"}, 400)
            r.close = True
            return r
        if length > limit:
            self._drain(length)
            return html_reply(413, nginx_page(413, "Request Entity Too Large"), close=True)
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionError("client closed the connection mid-body")
        return body

    def _drain(self, length: int) -> None:
        if length > DRAIN_LIMIT:
            return  # do not read forever; the client may see a reset instead of the 413
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 256 * 1024))
            if not chunk:
                break
            left -= len(chunk)

    def _read_chunked(self, limit: int) -> bytes | Reply:
        buf: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                r = json_reply({"statusCode": 400, "message": "bad chunked encoding"}, 400)
                r.close = True
                return r
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            total += size
            if total > DRAIN_LIMIT:
                return html_reply(413, nginx_page(413, "Request Entity Too Large"), close=True)
            data = self.rfile.read(size)
            self.rfile.readline(8)  # CRLF after the chunk
            if total <= limit:
                buf.append(data)
        if total > limit:
            return html_reply(413, nginx_page(413, "Request Entity Too Large"), close=True)
        return b"".join(buf)
