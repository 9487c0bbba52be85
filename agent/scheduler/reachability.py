"""Which platforms answer: one that gave no answer at all is probed every ``probe_interval_s`` (on the
scheduler's pool) instead of being hammered by its backlog; the first answer - a probe's or any request's -
brings it back and wakes its waiting jobs."""

from __future__ import annotations

import threading
from collections.abc import Callable

from agent import clock


class Reachability:
    def __init__(
        self, probe: Callable[[str], bool], on_back: Callable[[str], None], interval: Callable[[], float]
    ) -> None:
        self._probe = probe  # (platform) -> answered?
        self._on_back = on_back
        self._interval = interval  # probe_interval_s, read at use time
        self._lock = threading.Lock()
        self.offline: dict[str, float] = {}  # platform -> when to probe next
        self._probing: set[str] = set()

    def went_down(self, name: str) -> bool:
        """Mark `name` unreachable; False when it already was."""
        with self._lock:
            if name in self.offline:
                return False
            self.offline[name] = clock.now() + self._interval()
            return True

    def answered(self, name: str) -> None:
        """Any answer from `name`: it is reachable (again)."""
        with self._lock:
            was_down = self.offline.pop(name, None) is not None
        if was_down:
            self._on_back(name)

    def due_probes(self, now: float) -> list[str]:
        """Platforms whose probe is due; each is marked as being probed until `probe` returns."""
        with self._lock:
            due = [n for n, t in self.offline.items() if t <= now and n not in self._probing]
            self._probing.update(due)
        return due

    def next_probe_at(self) -> float | None:
        with self._lock:
            times = [t for n, t in self.offline.items() if n not in self._probing]
        return min(times) if times else None

    def probe(self, name: str) -> None:
        try:
            ok = self._probe(name)
        finally:
            with self._lock:
                self._probing.discard(name)
        if ok:
            self.answered(name)
            return
        with self._lock:
            if name in self.offline:
                self.offline[name] = clock.now() + self._interval()
