"""Retention: guests' photos and results are not kept for ever. Finished jobs (done, failed, expired, cancelled)
older than ``[queue] keep_days``, and the oldest finished jobs beyond ``[queue] keep_results_gb``, are deleted with
their folders (the photo, the results, job.json). A job that is not finished is never touched, whatever its age:
its photo is what the guest is still waiting for.

The daemon sweeps once shortly after start and then hourly; `edge-agent queue purge --done --older-than DAYS`
does the same by hand.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from agent import clock
from agent.jobs.lifecycle import Lifecycle
from agent.jobs.model import FINAL_STATES, Job

log = logging.getLogger(__name__)
DAY_S = 86400.0
FIRST_SWEEP_S = 60.0  # after start: not in the way of the first guests
SWEEP_EVERY_S = 3600.0


def job_bytes(job: Job) -> int:
    return job.capture_bytes + sum(o.size or 0 for o in job.outputs)


def select(jobs: Iterable[Job], *, now: float, keep_days: float | None, keep_bytes: int | None = None) -> list[Job]:
    """The finished jobs to delete: older than keep_days, or beyond keep_bytes counted from the newest."""
    finished = sorted((j for j in jobs if j.state in FINAL_STATES), key=lambda j: j.created_at, reverse=True)
    out: list[Job] = []
    kept = 0
    for j in finished:
        ended = j.finished_at or j.updated_at
        if keep_days is not None and ended < now - keep_days * DAY_S:
            out.append(j)
            continue
        kept += job_bytes(j)
        if keep_bytes is not None and kept > keep_bytes:
            out.append(j)
    return out


def purge(lifecycle: Lifecycle, jobs: list[Job], results_root: Path) -> list[str]:
    """Delete them (a job retried meanwhile stays) and the day folders left empty; their numbers stay in the
    statistics."""
    from agent import stats

    printing = _printing(lifecycle.store.path)
    jobs = [j for j in jobs if j.id not in printing]  # its print still needs the picture
    stats.archive(lifecycle.store.path, jobs)
    gone = lifecycle.purge(jobs, states=FINAL_STATES)  # checks the prints again, in the deleting transaction
    days = {Path(j.result_dir).parent for j in jobs if j.id in set(gone) and j.result_dir}
    for d in days:
        try:
            if d.parent == results_root and not any(d.iterdir()):
                d.rmdir()
        except OSError:
            pass
    return gone


def _printing(db: Path) -> set[str]:
    """Jobs with a print not yet out (queued, sent, printing, held): kept until it is."""
    import sqlite3

    try:
        with sqlite3.connect(db, timeout=10) as c:
            rows = c.execute(
                "SELECT DISTINCT job_id FROM prints WHERE state IN ('queued', 'sent', 'printing', 'held')"
            ).fetchall()
    except sqlite3.OperationalError:  # no print has ever been made here (no table)
        return set()
    return {r[0] for r in rows}


class RetentionService:
    """The daemon's hourly sweep, as a service (start / stop / alive)."""

    def __init__(self, lifecycle: Lifecycle, settings: Callable[[], tuple[float, float, Path]]) -> None:
        self.lifecycle = lifecycle
        self.settings = settings  # (keep_days, keep_results_gb, results root; 0 = no limit), read at each sweep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_purged = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def sweep(self) -> list[str]:
        keep_days, keep_gb, root = self.settings()
        if not keep_days and not keep_gb:
            return []
        jobs = self.lifecycle.store.list(FINAL_STATES, limit=10_000_000)
        keep_bytes = int(keep_gb * 1024**3) if keep_gb else None
        doomed = select(jobs, now=clock.now(), keep_days=keep_days or None, keep_bytes=keep_bytes)
        if not doomed:
            return []
        gone = purge(self.lifecycle, doomed, root)
        self.last_purged = len(gone)
        log.info("retention: deleted %d finished job(s) and their photos and results", len(gone))
        return gone

    def _run(self) -> None:
        wait = FIRST_SWEEP_S
        while not self._stop.wait(wait):
            wait = SWEEP_EVERY_S
            try:
                self.sweep()
            except Exception:  # a passing error (disk, store busy): try again next hour
                log.exception("retention sweep failed")
