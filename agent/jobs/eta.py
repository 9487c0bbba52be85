"""How long a job of a profile usually takes on this device: the ETA shown when the platform gives none.

A job's run is timed from the start of its (last) submit to done: upload, the platform's queue and work, and the
download, as the guest waits for them. The last ``KEEP`` runs of each profile are kept in the store's ``meta``
table (``eta.<profile>``: a JSON list of seconds), so the estimate survives restarts and is shared by ``once`` and
the daemon. The estimate is their median (one slow run on a busy evening does not move it far), and only from
``MIN_RUNS`` runs on: before that the device does not know, and says nothing rather than a guess.

A second series per profile (``eta.task.<profile>``) times the platform's part alone: from the submit's reply to
the moment a poll saw the task finished (less half the last gap between polls). The poll pacer
(agent/scheduler/pacing.py) reads it to poll fast only around the expected end; the whole-run series would put that
end too late by the upload and the download.
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
from typing import TYPE_CHECKING

from agent.jobs.model import Job, JobState

if TYPE_CHECKING:
    from agent.jobs.store import JobStore

log = logging.getLogger(__name__)

KEEP = 15
MIN_RUNS = 3
_KEY = "eta.{}"
_TASK_KEY = "eta.task.{}"


def run_started_at(job: Job) -> float | None:
    """When the job's last submit started (its history records every move)."""
    for entry in reversed(job.history):
        if entry.get("state") == JobState.SUBMITTING.value:
            ts = entry.get("ts")
            return float(ts) if isinstance(ts, (int, float)) else None
    return None


class EtaModel:
    """Per-profile running median of run durations, kept in the job store."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._runs: dict[str, list[float]] = {}  # meta key -> runs: read once, then kept in step with the store

    def runs(self, profile: str, key: str = _KEY) -> list[float]:
        name = key.format(profile)
        with self._lock:
            if name not in self._runs:
                self._runs[name] = self._load(name)
            return list(self._runs[name])

    def _load(self, name: str) -> list[float]:
        try:
            raw = self.store.meta_get(name)
            values = json.loads(raw) if raw else []
            return [float(v) for v in values if isinstance(v, (int, float)) and v >= 0][-KEEP:]
        except Exception:  # a damaged row costs the estimate, never a job
            log.warning("ETA history %s unreadable; starting afresh", name, exc_info=True)
            return []

    def typical(self, profile: str) -> float | None:
        """The median run of this profile, once there are MIN_RUNS of them."""
        runs = self.runs(profile)
        return statistics.median(runs) if len(runs) >= MIN_RUNS else None

    def record(self, job: Job) -> None:
        """A job finished (done): its run joins its profile's history."""
        started = run_started_at(job)
        if started is None or job.finished_at is None or job.finished_at < started:
            return
        self._add(job.profile, _KEY, job.finished_at - started)

    def record_task(self, profile: str, seconds: float) -> None:
        """A task was seen finished `seconds` after its submit was answered."""
        if seconds >= 0:
            self._add(profile, _TASK_KEY, seconds)

    def task_times(self, profile: str) -> list[float]:
        """The platform's part of this profile's last runs (seconds), oldest first; [] below MIN_RUNS."""
        runs = self.runs(profile, _TASK_KEY)
        return runs if len(runs) >= MIN_RUNS else []

    def _add(self, profile: str, key: str, seconds: float) -> None:
        name = key.format(profile)
        runs = (self.runs(profile, key) + [round(seconds, 2)])[-KEEP:]
        with self._lock:
            self._runs[name] = runs
        try:
            self.store.meta_set(name, json.dumps(runs), durable=False)  # a courtesy: not worth a disk sync
        except Exception:  # the estimate is a courtesy: never fail a delivered job over it
            log.warning("could not keep the ETA history %s", name, exc_info=True)

    def estimate(self, job: Job, now: float) -> float | None:
        """Seconds left for `job` by this device's history (None: not enough history). Before the submit: a whole
        run; during it: what is left of a typical run (never below a second while it still runs)."""
        typical = self.typical(job.profile)
        if typical is None:
            return None
        started = run_started_at(job) if job.state != JobState.CAPTURED else None
        left = typical if started is None else typical - (now - started)
        return float(max(1, round(left)))
