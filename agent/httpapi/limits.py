"""How much of the server one client may hold: connection slots, per-address caps, slots kept for the device.

A Pi Zero affords a few dozen threads, and every connection is one. Without caps, 40 slow-header connections or
60 event-stream clients from the event network took every slot and every capture got 503. So:

* one address may hold only a few connections (a browser opens at most 6 per host);
* the last few slots are kept for the device's own clients (the kiosk browser and the CLI run on the booth);
* event streams (SSE) live long, so they have their own, smaller pool inside the connection slots.

These are module constants, not config keys (yet): they size the server to a Pi, not to an event.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import Counter

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 32  # connections served at once (each is a thread)
LOCAL_RESERVED = 4  # of those, the last few only the device's own clients may take
MAX_PER_CLIENT = 8  # connections one other address may hold
MAX_PER_OWN_CLIENT = 16  # the device itself: the kiosk browser (6 per host) plus the CLI, demo and tools
RETRY_AFTER_S = 1  # what a refused connection is told

REQUEST_TIMEOUT_S = 5.0  # a request's line, headers and body must all arrive within this (slowloris)
IDLE_TIMEOUT_S = 10.0  # a kept-alive connection may wait this long for its next request
SEND_TIMEOUT_S = 20.0  # a client that takes none of our answer for this long is dropped

SSE_MAX_STREAMS = 8  # event streams at once (inside MAX_CONNECTIONS)
SSE_LOCAL_RESERVED = 2  # of those, kept for the device's own kiosk page
SSE_MAX_PER_CLIENT = 2  # streams one other address may hold
SSE_MAX_PER_OWN_CLIENT = 4  # the kiosk reloading its page while its old stream has not noticed yet
SSE_RETRY_AFTER_S = 5

_OWN_ADDRESSES = frozenset({"127.0.0.1", "::1"})
_NOTE_EVERY_S = 60.0


def client_key(address: str) -> str:
    """One spelling per client address: IPv4-mapped IPv6 (::ffff:127.0.0.5, what a dual-stack socket reports)
    becomes its IPv4 form, and an IPv6 zone is dropped, so a client cannot double its share by changing families."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def is_loopback(address: str) -> bool:
    """Loopback, IPv4-mapped forms included (Python 3.11 calls ::ffff:127.0.0.1 not loopback)."""
    try:
        return ipaddress.ip_address(client_key(address)).is_loopback
    except ValueError:
        return False


def is_own_client(peer: str, local: str) -> bool:
    """A connection from this device itself: from 127.0.0.1 / ::1 (where a local process connects from unless it
    binds another address), or from the very address it arrived on (a local process using the LAN address).
    Other loopback addresses count as other clients: tests use them to stand for phones on the event network."""
    peer, local = client_key(peer), client_key(local)
    return peer in _OWN_ADDRESSES or peer == local


class Slots:
    """A pool of `total` slots; other clients may use all but `reserved`, and each address at most its cap.
    `take` answers 0 (taken: call `release` later) or the HTTP status to refuse with (429 cap, 503 full)."""

    def __init__(self, name: str, total: int, reserved: int, per_client: int, per_own_client: int) -> None:
        self.name = name
        self.total, self.reserved = total, reserved
        self.per_client, self.per_own_client = per_client, per_own_client
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()
        self._in_use = 0
        self._refused: Counter[str] = Counter()  # since the last log note
        self._noted = 0.0

    def take(self, client: str, own: bool) -> int:
        with self._lock:
            cap = self.per_own_client if own else self.per_client
            limit = self.total if own else self.total - self.reserved
            if self._held[client] >= cap:
                status = 429
            elif self._in_use >= limit:
                status = 503
            else:
                self._held[client] += 1
                self._in_use += 1
                return 0
            self._refused[client] += 1
            note = self._note_locked()
        if note:
            log.warning("%s", note)
        return status

    def release(self, client: str) -> None:
        with self._lock:
            self._in_use -= 1
            self._held[client] -= 1
            if self._held[client] <= 0:
                del self._held[client]

    @property
    def in_use(self) -> int:
        return self._in_use

    def _note_locked(self) -> str | None:
        """One log line a minute at most while clients are refused (a flood must not flood the log too)."""
        now = time.monotonic()
        if now - self._noted < _NOTE_EVERY_S:
            return None
        self._noted = now
        n = sum(self._refused.values())
        top = ", ".join(f"{c} ({k})" for c, k in self._refused.most_common(3))
        self._refused.clear()
        return f"http: refused {n} {self.name} ({self._in_use}/{self.total} in use); most from {top}"
