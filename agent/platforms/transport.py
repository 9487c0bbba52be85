"""The connection layer under every platform request: checked addresses and a total deadline on every socket call.

httpx's timeouts are per operation: a server that sends one byte every few seconds never trips a 60 s read timeout
and can hold a job thread for as long as it likes. Here a request runs inside ``deadline_scope(at)``, and every
connect, read and write below it waits at most until ``at`` (a ``time.monotonic()`` instant), whatever the
per-operation timeout says; past it, the call raises the httpcore timeout httpx turns into ``httpx.TimeoutException``.

The same layer connects only to addresses the platform's ``TargetPolicy`` let through (targets.py), resolving a name
once: what was checked is what is connected to. Each new connection passes it, so every redirect hop does too.
Proxies from the environment (``HTTP(S)_PROXY``) are not used: the booth connects directly.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from agent.platforms.errors import TransientError
from agent.platforms.targets import TargetPolicy

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("platform_deadline", default=None)


@contextmanager
def deadline_scope(at: float | None) -> Iterator[None]:
    """Every socket call inside waits at most until ``at`` (the earlier of it and any enclosing deadline)."""
    outer = _DEADLINE.get()
    token = _DEADLINE.set(at if outer is None else outer if at is None else min(at, outer))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _clamp(timeout: float | None, exc: type[Exception]) -> float | None:
    at = _DEADLINE.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise exc("deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write ends by the current deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> Any:
        tls = self._inner.start_tls(ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Connects only to addresses ``policy`` allows (the name resolved once), every stream within the deadline."""

    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self.policy.addresses(host, port)  # PermanentError for a refused address
        except (OSError, UnicodeError) as e:
            raise httpcore.ConnectError(f"cannot resolve {host}: {e}") from None
        last: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                stream = self._inner.connect_tcp(
                    address, port, _clamp(timeout, httpcore.ConnectTimeout), local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
                continue
            return _DeadlineStream(stream)
        raise last

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not a platform")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` (its request and error mapping) over a pool that connects through ``GuardedBackend``."""

    def __init__(self, policy: TargetPolicy, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )


# ------------------------------------------------------------------------------------ downloads per host

BUSY_RETRY_S = 2.0  # how soon a download refused for a busy host is worth trying again


class HostSlots:
    """How many downloads run per host, across every platform client of this process (two platforms may share one
    object store). ``hold(host, limit)`` raises ``TransientError(kind="busy")`` at once when ``limit`` already run:
    a slow host never blocks a job thread waiting for a slot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}

    @contextmanager
    def hold(self, host: str, limit: int) -> Iterator[None]:
        with self._lock:
            n = self._running.get(host, 0)
            if n >= limit:
                raise TransientError(
                    f"{n} downloads from {host} already running (max_downloads_per_host = {limit}); trying again later",
                    kind="busy",
                    retry_after=BUSY_RETRY_S,
                )
            self._running[host] = n + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._running[host] - 1
                if left:
                    self._running[host] = left
                else:
                    del self._running[host]

    def running(self, host: str) -> int:
        with self._lock:
            return self._running.get(host, 0)


DOWNLOAD_SLOTS = HostSlots()

__all__ = ["DOWNLOAD_SLOTS", "GuardedTransport", "HostSlots", "deadline_scope"]
