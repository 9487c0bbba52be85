"""A full disk under queued jobs: pause, say so once, resume by itself.

When a step cannot write (ENOSPC from a job.json, a download or the queue database) the scheduler stops picking
jobs instead of failing them or retrying in a tight loop: one log line, the ``disk_full`` mode (an ``alarm`` event),
and a probe every ``PROBE_INTERVAL_S`` that writes a small file where the booth writes. The first probe that
succeeds ends the pause (one log line, a ``disk_ok`` alarm) and the jobs go on where they stopped: nothing is lost,
because a write that failed changed nothing.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger(__name__)
PROBE_INTERVAL_S = 2.0
PROBE_BYTES = 256 * 1024  # room for a job.json and a database page or two


def is_disk_full(e: BaseException) -> bool:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(e, sqlite3.OperationalError) and "full" in str(e).lower()


class DiskGuard:
    def __init__(self, folders: Callable[[], Iterable[Path]], on_change: Callable[[str, str], None]) -> None:
        self._folders = folders  # where the booth writes (state_dir, output_dir), read at use time
        self._on_change = on_change  # (code "disk_full" | "disk_ok", message)
        self._lock = threading.Lock()
        self.full: str | None = None
        self._next_probe = 0.0
        self.pauses = 0

    def hit(self, e: BaseException) -> None:
        """A write failed for lack of space: pause (said once)."""
        with self._lock:
            if self.full is not None:
                return
            self.full = f"storage full: {e}; queued jobs wait until space is freed"
            self._next_probe = time.monotonic() + PROBE_INTERVAL_S
            self.pauses += 1
            msg = self.full
        log.error("%s (the booth checks every %g s and resumes by itself)", msg, PROBE_INTERVAL_S)
        self._on_change("disk_full", msg)

    def paused(self) -> bool:
        """True while the disk is full; probes (at most every PROBE_INTERVAL_S) and resumes when it is not."""
        with self._lock:
            if self.full is None:
                return False
            if time.monotonic() < self._next_probe:
                return True
            self._next_probe = time.monotonic() + PROBE_INTERVAL_S
        if not self._room():
            return True
        with self._lock:
            self.full = None
        log.warning("storage has room again: queued jobs resume")
        self._on_change("disk_ok", "storage has room again")
        return False

    def next_probe_in(self) -> float:
        return max(0.05, self._next_probe - time.monotonic())

    def _room(self) -> bool:
        for folder in self._folders():
            probe = folder / f".space-probe-{uuid.uuid4().hex[:8]}"
            try:
                fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    os.write(fd, b"\0" * PROBE_BYTES)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                return False
            finally:
                probe.unlink(missing_ok=True)
        return True
