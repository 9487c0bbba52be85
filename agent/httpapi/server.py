"""The threaded server: who gets a connection, and how long a connection may take to say what it wants.

Admission happens on the accept thread, before any thread is started: a client over its address's cap gets a
429, a full server a 503 (both with Retry-After, and closed). Reading a request has a deadline for the whole of
it (line, headers, body), not a timeout per read: a client dripping one byte a second never resets it.
"""

from __future__ import annotations

import io
import logging
import socket
import sys
import time
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from agent.httpapi.limits import (
    IDLE_TIMEOUT_S,
    LOCAL_RESERVED,
    MAX_CONNECTIONS,
    MAX_PER_CLIENT,
    MAX_PER_OWN_CLIENT,
    REQUEST_TIMEOUT_S,
    RETRY_AFTER_S,
    SEND_TIMEOUT_S,
    Slots,
    client_key,
    is_own_client,
)

if TYPE_CHECKING:
    from agent.httpapi.api import HttpApi

log = logging.getLogger(__name__)


def _refusal(status: int) -> bytes:
    reason, why = (
        ("Too Many Requests", "too many connections from this address")
        if status == 429
        else ("Service Unavailable", "too many connections")
    )
    body = b'{"error": {"code": "busy", "message": "%s; retry later"}}' % why.encode()
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nRetry-After: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (status, reason.encode(), len(body), RETRY_AFTER_S, body)
    )


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64  # the accept loop is quick; refusals are answered there

    def __init__(self, addr: tuple[str, int], handler: type, api: HttpApi) -> None:
        self.api = api
        self.slots = Slots("connections", MAX_CONNECTIONS, LOCAL_RESERVED, MAX_PER_CLIENT, MAX_PER_OWN_CLIENT)
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        client = client_key(client_address[0])
        try:
            own = is_own_client(client_address[0], request.getsockname()[0])
        except OSError:  # already gone
            self.shutdown_request(request)
            return
        status = self.slots.take(client, own)
        if status:
            try:
                request.settimeout(1.0)  # never let a refused client stall the accept loop
                request.sendall(_refusal(status))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release(client)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release(client_key(client_address[0]))

    def handle_error(self, request: Any, client_address: Any) -> None:
        """The stdlib prints a traceback to stderr; a client that left mid-answer is not worth one."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # broken pipe, reset, send timeout: the client is gone
            log.debug("http %s: connection ended: %s", client_address[0], exc)
            return
        log.exception("http %s: unexpected error", client_address[0])


class DeadlineReader(io.RawIOBase):
    """The reading side of one connection. Every read must end by `deadline` (time.monotonic()):

    * a new connection has REQUEST_TIMEOUT_S from its accept for its whole first request;
    * between kept-alive requests it may stay silent IDLE_TIMEOUT_S, and from the next request's first byte it
      again has REQUEST_TIMEOUT_S for all of it.

    Past the deadline a read raises TimeoutError, which the stdlib handler turns into a closed connection.
    Writes keep the socket's own per-send timeout (SEND_TIMEOUT_S)."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.deadline = time.monotonic() + REQUEST_TIMEOUT_S
        self._idle = False
        self.eof = False  # the client closed its side: a request cut short must not be run

    def next_request(self) -> None:
        """The previous request is answered: wait (idle) for the next one."""
        self.deadline = time.monotonic() + IDLE_TIMEOUT_S
        self._idle = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        self.sock.settimeout(left)
        try:
            n = self.sock.recv_into(buffer)
        finally:
            self.sock.settimeout(SEND_TIMEOUT_S)
        if not n and len(buffer):
            self.eof = True
        if n and self._idle:
            self._idle = False
            self.deadline = time.monotonic() + REQUEST_TIMEOUT_S
        return n


__all__ = ["ApiServer", "DeadlineReader", "MAX_CONNECTIONS"]
