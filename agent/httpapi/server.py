"""The threaded server: who gets a connection, and how long a connection may take to say what it wants.

Admission happens on the accept thread, before any thread is started: a client over its address's cap gets a
429, a full server a 503 (both with Retry-After, and closed). Reading a request has a deadline for the whole of
it (line, headers, body), not a timeout per read: a client dripping one byte a second never resets it.
"""

from __future__ import annotations

import io
import logging
import selectors
import socket
import sys
import threading
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


LINGER_S = 2.0  # how long a refused client may take to finish sending what it sent before it read our answer
LINGER_MAX = 128  # refused connections lingering at once; beyond it, closed at once


class Closer:
    """Closes refused connections gracefully, off the accept thread: our side is shut after the answer, and what
    the client still sends (its request, a body) is read and dropped until it closes or LINGER_S passes. Closing a
    socket with unread data in it makes the kernel send a reset, which can destroy the 503 before the client has
    read it (a burst of triggers saw "connection reset" and "broken pipe" instead of Retry-After)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        self._until: dict[socket.socket, float] = {}
        self._thread: threading.Thread | None = None

    def close(self, sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_WR)  # the answer is followed by our FIN, never by a reset
            sock.setblocking(False)
        except OSError:
            sock.close()
            return
        with self._lock:
            if len(self._until) >= LINGER_MAX:
                sock.close()
                return
            self._sel.register(sock, selectors.EVENT_READ)
            self._until[sock] = time.monotonic() + LINGER_S
            if self._thread is None:  # started on demand, ends when nothing lingers: no idle thread
                self._thread = threading.Thread(target=self._run, name="http-closer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            for key, _ in self._sel.select(0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    if sock.recv(65536):
                        continue
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                self._drop(sock)
            now = time.monotonic()
            with self._lock:
                late = [s for s, t in self._until.items() if t <= now]
            for sock in late:
                self._drop(sock)
            with self._lock:
                if not self._until:
                    self._thread = None
                    return

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            if self._until.pop(sock, None) is None:
                return
            self._sel.unregister(sock)
        sock.close()


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # a burst of clients connecting at once: none dropped by a full backlog

    def __init__(self, addr: tuple[str, int], handler: type, api: HttpApi) -> None:
        self.api = api
        self.slots = Slots("connections", MAX_CONNECTIONS, LOCAL_RESERVED, MAX_PER_CLIENT, MAX_PER_OWN_CLIENT)
        self.closer = Closer()
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
                self.shutdown_request(request)
                return
            self.closer.close(request)
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
