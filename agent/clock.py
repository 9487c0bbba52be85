"""The clock for deadlines, backoff and the queue's timestamps: wall-clock seconds (they are stored and shown to
people) that never step within a run.

A Raspberry Pi has no real-time clock: it boots with the time it had at shutdown and NTP steps it forward (hours,
days) once the network is up; an NTP correction can step it back. Within a run, time here advances with the
monotonic clock from a wall-clock reading taken at start (`rebase`), so a step never makes a backoff wait for a day
nor expires every task at once. At the next start the reading is taken again: a booth restarted after its clock
was corrected polls an overdue task once before expiring it (see the scheduler's sweep).
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_base: tuple[float, float] = (time.time(), time.monotonic())


def rebase() -> None:
    """Take the wall clock as it is now (at start-up)."""
    global _base
    with _lock:
        _base = (time.time(), time.monotonic())


def now() -> float:
    wall, mono = _base
    return wall + (time.monotonic() - mono)


def step_seconds() -> float:
    """How far the system clock has stepped away from ours since the last rebase (for `doctor` and logs)."""
    return time.time() - now()
