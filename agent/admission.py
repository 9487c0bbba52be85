"""Who may add a job now: the written policy for a full queue and for floods of remote captures.

- A person at the booth (button, kiosk, CLI) is never refused while there is disk (``queue.min_free_disk_mb``)
  and is never rate-limited: the booth exists for them.
- Remote captures (MQTT, fleet, HTTP) are rate-limited per source (``queue.remote_rate_per_min``, a token bucket
  that allows a short burst), refused while the queue is full (``queue.max_jobs`` unfinished jobs, or
  ``queue.max_bytes_mb`` of their photos), and at most ``MAX_PENDING_REMOTE`` of them wait for the camera at
  once. Each refusal is a clear error to the sender (``rate_limited`` 429, ``queue_full`` 503, ``busy`` 409);
  nothing already queued is dropped.
- Queued remote captures may expire unsent after ``queue.remote_ttl_s`` (the scheduler's sweep).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.commands import CommandError

if TYPE_CHECKING:
    from agent.config import Config
    from agent.jobs.store import JobStore

MAX_PENDING_REMOTE = 8  # remote captures waiting for the camera at once; more are refused as busy
BUSY_RETRY_S = 1.0  # what a sender refused as busy is told to wait (the camera takes a few captures a second)
BURST_S = 10.0  # a bucket holds this many seconds' worth of captures (never fewer than 3)


class RateLimiter:
    """One token bucket per source: `rate_per_min` tokens a minute, a burst of a few seconds' worth."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # source -> (tokens, last refill)

    def take(self, source: str, rate_per_min: float) -> float | None:
        """Take a token; None when taken, else the seconds until one is free."""
        rate = rate_per_min / 60.0
        cap = max(3.0, rate * BURST_S)
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(source, (cap, now))
            tokens = min(cap, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[source] = (tokens - 1.0, now)
                return None
            self._buckets[source] = (tokens, now)
            return (1.0 - tokens) / rate


class Admission:
    def __init__(self, store: JobStore, config: Callable[[], Config]) -> None:
        self.store = store
        self._config = config
        self.rates = RateLimiter()
        self._lock = threading.Lock()
        self.pending_remote = 0  # remote captures accepted by request() and not yet taken
        self.refused: dict[str, int] = {}  # code -> count, for stats and tests

    def _refuse(self, code: str, message: str, retry_after: float | None = None) -> CommandError:
        with self._lock:
            self.refused[code] = self.refused.get(code, 0) + 1
        return CommandError(code, message, retry_after)

    def admit_remote(self, source: str) -> None:
        """At request time, before the capture waits for the camera: the rate limit and the waiting bound."""
        q = self._config().queue
        wait = self.rates.take(source, q.remote_rate_per_min)
        if wait is not None:
            raise self._refuse(
                "rate_limited",
                f"too many remote captures from {source}: at most "
                f"{q.remote_rate_per_min} a minute (queue.remote_rate_per_min); "
                f"try again in {wait:.0f} s",
                wait,
            )
        with self._lock:
            if self.pending_remote >= MAX_PENDING_REMOTE:
                busy = True
            else:
                busy = False
                self.pending_remote += 1
        if busy:
            raise self._refuse(
                "busy", f"{MAX_PENDING_REMOTE} remote captures are already waiting for the camera", BUSY_RETRY_S
            )

    def taken(self) -> None:
        """A remote capture admitted by `admit_remote` left the waiting line (taken, or refused later)."""
        with self._lock:
            self.pending_remote = max(0, self.pending_remote - 1)

    def check_queue(self) -> None:
        """For a remote capture, on the capture thread: the queue's bounds."""
        q = self._config().queue
        jobs, used = self.store.usage()
        if jobs >= q.max_jobs:
            raise self._refuse(
                "queue_full",
                f"the queue is full: {jobs} unfinished jobs (queue.max_jobs = "
                f"{q.max_jobs}); remote captures are refused until it drains, a guest "
                "at the booth is still served",
            )
        if used >= q.max_bytes_mb * 1_048_576:
            raise self._refuse(
                "queue_full",
                f"the queue is full: {used / 1_048_576:.0f} MB of photos wait "
                f"(queue.max_bytes_mb = {q.max_bytes_mb}); remote captures are "
                "refused until it drains, a guest at the booth is still served",
            )
