"""Start-up reconciliation: make the store and the files agree again after a crash or a power cut.

- The database is checked (``PRAGMA quick_check``); a corrupt one is moved aside and rebuilt from the job.json
  files every job folder holds.
- Jobs caught in ``submitting`` are submitted again (the documented at-least-once window, see
  agent/scheduler/loop.py).
- ``submitted`` jobs keep their task id and resume polling; ``downloading`` jobs fetch again.
- Rows whose photo file is gone fail with that reason; photo folders without a row (a crash between the photo
  reaching the disk and the row being committed) are adopted as new jobs, so no photo is ever dropped.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent import clock
from agent.config import Config
from agent.jobs.lifecycle import Lifecycle
from agent.jobs.model import PRIORITY_GUEST, WORK_STATES, Job, JobState, Output
from agent.jobs.store import JobStore, StoreError
from agent.results import CAPTURE_NAME, ResultLayout

log = logging.getLogger(__name__)
S = JobState
RECENT_DAYS = 2  # photo folders scanned for orphans at every start (a crash only orphans the newest)


@dataclass
class RecoveryReport:
    integrity: str = "ok"
    resubmit: list[str] = field(default_factory=list)
    resumed_polls: int = 0
    missing_files: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    temp_files_removed: int = 0

    def lines(self) -> list[str]:
        out = []
        if self.integrity == "new" and self.adopted:
            out.append("no queue database: rebuilt from the job folders on disk")
        elif self.integrity not in ("ok", "new"):
            out.append(f"database check: {self.integrity}")
        if self.resubmit:
            out.append(f"{len(self.resubmit)} job(s) were mid-submit at the crash and will be submitted again")
        if self.resumed_polls:
            out.append(f"{self.resumed_polls} submitted task(s) resume polling")
        if self.missing_files:
            out.append(f"{len(self.missing_files)} job(s) failed: their photo file is missing")
        if self.adopted:
            out.append(f"{len(self.adopted)} photo(s) found on disk without a queue entry were queued")
        return out


def open_store(path: Path) -> tuple[JobStore, str]:
    """Open the job store; a damaged one is moved aside (kept for a post-mortem) and a fresh one started,
    which `recover` then rebuilds from the job.json files. Returns the store and "ok" or what was wrong."""
    if not path.exists():  # a first start - or a queue deleted by hand: either way every job folder is looked at
        return JobStore(path), "new"
    try:
        if path.stat().st_size == 0 and not _has_content(path.with_name(path.name + "-wal")):
            raise sqlite3.DatabaseError("the database file is empty (0 bytes)")  # SQLite would call it healthy
        store = JobStore(path)
        check = store.integrity_check()
        if check == "ok":
            return store, "ok"
        store.close()
    except StoreError as e:
        if not e.corrupt:
            raise  # permissions, a lock: the technician must fix that, nothing is moved
        check = str(e)
    except sqlite3.OperationalError as e:
        raise StoreError(f"cannot use the job store {path}: {e}") from None
    except sqlite3.DatabaseError as e:
        check = str(e)
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    log.error("job store %s is damaged (%s): moved to %s; rebuilding the queue from job.json files", path, check, aside)
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            os.replace(src, aside.with_name(aside.name + suffix))
    return JobStore(path), check


def _has_content(p: Path) -> bool:
    try:
        return p.stat().st_size > 0
    except OSError:
        return False


def recover(lifecycle: Lifecycle, config: Config, integrity: str = "ok") -> RecoveryReport:
    rep = RecoveryReport()
    rep.integrity = integrity
    store = lifecycle.store
    for job in store.list(WORK_STATES, limit=1_000_000, newest_first=False):
        platform: str | None
        try:
            platform = config.profile(job.profile).platform
        except KeyError:
            platform = job.platform  # the scheduler fails it with the reason
        # a [platforms.X] renamed: the job follows its profile - unless its task lives on a platform still there
        # (a profile edited to another platform must not send the poll of an existing task elsewhere)
        moved = job.state == S.CAPTURED or job.platform not in config.platforms
        if platform and platform != job.platform and moved:
            lifecycle.repoint(job, platform)
        if not Path(job.capture_path).is_file():
            reason = f"the captured photo is missing after a restart: {job.capture_path}"
            if lifecycle.fail(job.id, reason, only_from=(job.state,)) is not None:
                rep.missing_files.append(job.id)
            continue
        if job.state == S.SUBMITTING:
            note = "interrupted mid-submit: submitting again (the platform may hold a duplicate task)"
            lifecycle.requeue_lost_submit(job.id, resubmits=job.resubmits + 1, note=note)
            rep.resubmit.append(job.id)
        elif job.state == S.SUBMITTED:
            rep.resumed_polls += 1
    _adopt_orphans(lifecycle, config, rep, days=None if rep.integrity != "ok" else RECENT_DAYS)
    return rep


def _adopt_orphans(lifecycle: Lifecycle, config: Config, rep: RecoveryReport, days: int | None) -> None:
    known = lifecycle.store.all_ids()
    for d in lifecycle.layout.recent_dirs(days):
        for pattern in (".*.tmp", ".*.part"):  # half-written captures and downloads
            for tmp in d.glob(pattern):
                tmp.unlink(missing_ok=True)
                rep.temp_files_removed += 1
        if d.name in known:
            continue
        try:
            _adopt(lifecycle, config, rep, d)
        except (ValueError, TypeError, KeyError) as e:  # a damaged or hand-edited job.json: say so, go on
            log.error("recovery: cannot adopt %s: %s", d, e)


def _int(v: object, default: int) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def _adopt(lifecycle: Lifecycle, config: Config, rep: RecoveryReport, d: Path) -> None:
    """Queue a photo folder the store does not know (from its job.json)."""
    capture = d / CAPTURE_NAME
    meta = ResultLayout.read_job_json(d)
    if not capture.is_file() or meta is None or meta.get("id") != d.name:
        return
    now = clock.now()
    try:
        state = S(meta.get("state", "captured"))
    except ValueError:
        state = S.CAPTURED
    task_id = meta.get("remote_task_id")
    if state == S.SUBMITTED and task_id:
        pass  # the platform holds the task: resume polling it, never submit again
    elif state not in (S.DONE, S.FAILED, S.CANCELLED, S.EXPIRED):
        state, task_id = S.CAPTURED, None
    profile = meta.get("profile") or config.profiles[0].name
    names = [p.name for p in config.profiles]
    job = Job(
        id=d.name,
        profile=profile if profile in names else names[0],
        source=meta.get("source", "recovered"),
        state=state,
        created_at=float(meta.get("created_at", now)),
        updated_at=now,
        capture_path=str(capture),
        platform=meta.get("platform"),
        endpoint=meta.get("endpoint") if task_id else None,
        params=meta.get("params") or {},
        result_dir=str(d),
        request_id=meta.get("request_id"),
        error=meta.get("error"),
        remote_task_id=task_id,
        submitted_at=meta.get("submitted_at") if task_id else None,
        attempts=int(meta.get("attempts") or 0),
        resubmits=int(meta.get("resubmits") or 0),
        outputs=[Output(**o) for o in meta.get("outputs") or [] if isinstance(o, dict)],
        finished_at=meta.get("finished_at"),
        history=list(meta.get("history") or []),
        # what the guest chose and the link they scanned survive a rebuilt queue (a choice that no longer exists
        # fails the job with its reason when it is prepared)
        choice=meta.get("choice") if profile in names and isinstance(meta.get("choice"), str) else None,
        share_token=meta.get("share_token") if isinstance(meta.get("share_token"), str) else None,
        priority=_int(meta.get("priority"), PRIORITY_GUEST),
        capture_bytes=_int(meta.get("capture_bytes"), 0) or capture.stat().st_size,
    )
    if state == S.CAPTURED or (state == S.SUBMITTED and job.platform not in config.platforms):
        try:  # not yet sent, or its platform was renamed: the profile says where it goes
            job.platform = config.profile(job.profile).platform
        except KeyError:
            pass
    lifecycle.adopt(job)
    rep.adopted.append(job.id)
