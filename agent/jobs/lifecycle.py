"""A job's lifecycle: the one table of allowed transitions and the one class that moves jobs along it.

::

    (capture) ──captured──▶ captured ──start_submit──▶ submitting ──submitted──▶ submitted ──task_done──▶ downloading
                               ▲  ▲                       │      (a sync endpoint's result: both at once)       │
                               │  └──backoff / requeue_lost_submit                                              │
                               │                                                              finished ──▶ done ◀┘
          retry (failed | expired | cancelled)        fail ──▶ failed · expire ──▶ expired · cancel ──▶ cancelled

Every move runs in one order: compare-and-set in the store (whoever changes a job first wins; the loser gets
None) → ``job.json`` in the job's folder (so a lost database is rebuilt from what really happened) → the
``on_change`` callback (the core turns it into an event). Every recorded reason passes the redactor first, on
every path. Nothing else writes a job's state: the scheduler, the core (capture, cancel, retry), recovery and the
CLI all come here, and the store refuses a transition that is not in ``TRANSITIONS``.
"""

from __future__ import annotations

import errno
import logging
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import clock
from agent.commands import is_remote
from agent.jobs.model import (
    FINAL_STATES,
    PRIORITY_BACKLOG,
    PRIORITY_GUEST,
    PRIORITY_REMOTE,
    WORK_STATES,
    Job,
    JobState,
    Output,
)
from agent.jobs.progress import PROGRESS_KEYS
from agent.jobs.retry import WAIT_POLL

if TYPE_CHECKING:
    from agent.jobs.store import JobStore
    from agent.results import ResultLayout

log = logging.getLogger(__name__)
S = JobState

# move -> {state it may start from: state it ends in}. The whole state machine; the store enforces the edges.
TRANSITIONS: dict[str, dict[JobState, JobState]] = {
    "start_submit": {S.CAPTURED: S.SUBMITTING},
    "submitted": {S.SUBMITTING: S.SUBMITTED},
    "task_done": {S.SUBMITTED: S.DOWNLOADING},
    "finished": {S.DOWNLOADING: S.DONE},
    "backoff": {S.SUBMITTING: S.CAPTURED, S.SUBMITTED: S.SUBMITTED, S.DOWNLOADING: S.DOWNLOADING},
    "requeue_lost_submit": {S.SUBMITTING: S.CAPTURED},
    "resubmit": {S.SUBMITTED: S.CAPTURED},  # the platform dropped the task (rejected): it will never run
    "fail": {s: S.FAILED for s in WORK_STATES},
    "expire": {S.CAPTURED: S.EXPIRED, S.SUBMITTED: S.EXPIRED, S.DOWNLOADING: S.EXPIRED},  # captured: remote_ttl_s
    "cancel": {s: S.CANCELLED for s in WORK_STATES},
    "retry": {S.FAILED: S.CAPTURED, S.EXPIRED: S.CAPTURED, S.CANCELLED: S.CAPTURED},
}
# job.json is written, and fsynced, at the milestones a queue rebuilt from these files must know after a power cut
# (the photo, the task id that must never be submitted again, every ending, a retry). The steps in between
# (start_submit, task_done, backoff, a sync answer) leave it as the last milestone wrote it: a queue rebuilt from
# it repeats at most a poll, a download, or the resubmit the at-least-once window already allows - and a job
# saves three file writes (on an SD card, a write and a rename are not free).
LIGHT_MOVES = frozenset({"start_submit", "task_done", "backoff"})  # (resubmit is synced: it forgets a task id)
# Their queue rows are committed without waiting for the disk too (agent/jobs/sqlite.py, Tx), but for start_submit:
# a photo that may be on the platform must be counted (`resubmits`) if it is submitted again after a power cut.
ROW_SYNCED_LIGHT_MOVES = frozenset({"start_submit"})
# `captured` and `adopt` create a job (no state before); every other move is one of these edges
ALLOWED_EDGES: frozenset[tuple[JobState, JobState]] = frozenset(
    (frm, to) for edges in TRANSITIONS.values() for frm, to in edges.items()
)
RETRYABLE = tuple(TRANSITIONS["retry"])


class InvalidTransition(ValueError):
    """A state change that is not in TRANSITIONS: a bug, never a race (races return None)."""


def log_transition(job: Job, move: str, note: str | None = None) -> None:
    """One INFO line per transition with the job id, so `journalctl -u edge-agent` shows the booth's throughput;
    a finished job says how long it took from the press."""
    extra = ""
    if job.state == S.DONE:
        extra = f" in {max(0.0, (job.finished_at or clock.now()) - job.created_at):.1f} s, {len(job.outputs)} output(s)"
    elif job.error and job.state in (S.FAILED, S.EXPIRED, S.CAPTURED):
        extra = f": {job.error}"
    elif note:
        extra = f": {note}"
    level = logging.WARNING if job.state in (S.FAILED, S.EXPIRED) else logging.INFO
    log.log(level, "job %s %s%s (profile %s, %s)", job.id, job.state.value, extra, job.profile, move)


def check_edges(frm: Iterable[JobState], to: JobState) -> None:
    bad = [f.value for f in frm if (f, to) not in ALLOWED_EDGES]
    if bad:
        raise InvalidTransition(f"{', '.join(bad)} -> {to.value} is not an allowed job transition")


OnChange = Callable[[Job, bool], None]  # (job, progress_only)


class Lifecycle:
    """The named moves. `redact` masks secrets in every reason; `on_change(job, progress_only)` announces."""

    def __init__(
        self,
        store: JobStore,
        layout: ResultLayout,
        *,
        redact: Callable[[str], str] = lambda t: t,
        on_change: OnChange | None = None,
    ) -> None:
        self.store = store
        self.layout = layout
        self.redact = redact
        self.on_change = on_change

    # ------------------------------------------------------------------------------------------ plumbing

    def _move(
        self,
        move: str,
        job_id: str,
        *,
        only_from: Iterable[JobState] | None = None,
        note: str | None = None,
        **changes: Any,
    ) -> Job | None:
        edges = TRANSITIONS[move]
        if only_from is not None:  # a state outside the move's table: the job moved on meanwhile (None, no move)
            edges = {f: edges[f] for f in only_from if f in edges}
        if note is not None:
            note = self.redact(note)
        if isinstance(changes.get("error"), str):
            changes["error"] = self.redact(changes["error"])
        # `submitted` without a task id (a sync endpoint's answer) holds nothing a rebuild must not lose
        light = move in LIGHT_MOVES or (move == "submitted" and not changes.get("remote_task_id"))
        sync_row = not light or move in ROW_SYNCED_LIGHT_MOVES
        job = self.store.move(job_id, edges, note=note, durable=sync_row, **changes)
        if job is not None:
            log_transition(job, move, note)
            self._after(job, write=not light)
        return job

    def _after(
        self, job: Job, *, announce: bool = True, present: Callable[[Job], None] | None = None, write: bool = True
    ) -> None:
        """job.json (at a milestone: `write`), then (for a finished job) the presentation, then the announcement."""
        full: OSError | None = None
        try:
            if write:
                self.layout.write_job_json(job)
        except OSError as e:  # the queue row is the truth; job.json is its copy for a rebuild
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                full = e
            else:
                log.error("job %s: could not write job.json: %s", job.id, e)
        if present is not None:
            try:
                present(job)
            except Exception:  # presenting must never undo a delivered result
                log.exception("job %s: presenting the result failed", job.id)
        if announce and self.on_change is not None:
            self.on_change(job, False)
        if full is not None:
            raise full  # the move is done; the scheduler pauses until there is room (one log line there)

    # ------------------------------------------------------------------------------------------ creation

    def captured(self, job: Job) -> Job:
        """The photo is durable (steps/capture.py): its first job.json, then the row, then the event. The one
        move whose file comes first: a crash in between leaves a folder that recovery adopts, so a photo whose
        trigger was acknowledged is never lost. On failure nothing stays behind (the guest is told it failed, so
        nothing may be adopted later) and the error is raised."""
        try:
            self.layout.write_job_json(job)  # fsyncs the folder: photo and job.json are durable together
            self.store.insert(job)
        except BaseException:
            if job.result_dir:
                shutil.rmtree(job.result_dir, ignore_errors=True)
            raise
        log_transition(job, "captured", f"from {job.source}")
        if self.on_change is not None:
            self.on_change(job, False)
        return job

    def adopt(self, job: Job) -> Job:
        """A job folder the store does not know (recovery): queue it as its job.json says."""
        job.history = [
            *job.history,
            {"ts": round(clock.now(), 3), "state": job.state.value, "note": "recovered from disk at start-up"},
        ]
        if job.error:
            job.error = self.redact(job.error)
        self.store.insert(job)
        self._after(job, announce=False)  # recovered, not new: nothing to announce (the mode ignores the past)
        return job

    # ------------------------------------------------------------------------------------------ the pipeline

    def start_submit(
        self, job_id: str, *, platform: str, endpoint: str, attempts: int, eta_s: float | None = None
    ) -> Job | None:
        return self._move(
            "start_submit", job_id, platform=platform, endpoint=endpoint, attempts=attempts, eta_s=eta_s, progress=None
        )

    def submitted(
        self, job_id: str, task_id: str | None, *, next_poll_at: float, since: float | None = None
    ) -> Job | None:
        """The platform holds a task (`task_id`) - or, for a sync endpoint (None), answered with the result.
        `since`: when the job's first task was submitted (a task rejected before): the deadline counts from it."""
        now = clock.now()
        return self._move(
            "submitted",
            job_id,
            note=f"task {task_id}" if task_id else None,
            remote_task_id=task_id,
            submitted_at=since or now,
            next_attempt_at=next_poll_at,
            failures=0,
            wait_kind=WAIT_POLL if task_id else None,
            error=None,
        )

    def task_done(self, job_id: str, remote_outputs: list[dict[str, Any]], *, note: str | None = None) -> Job | None:
        return self._move(
            "task_done",
            job_id,
            note=note,
            progress=100,
            failures=0,
            wait_kind=None,
            remote_outputs=remote_outputs,
            next_attempt_at=clock.now(),
            error=None,
        )

    def progress(
        self,
        before: Job,
        *,
        progress: int | None,
        queue_position: int | None,
        next_poll_at: float,
        step: str | None = None,
        eta_s: float | None = None,
    ) -> Job | None:
        """The task is still running: no state change, no job.json; announced (`job.progress`) when anything a
        guest reads moved. `before` is the job as the poll saw it (no second read on the hot path)."""
        job = self.store.update(
            before.id,
            (S.SUBMITTED,),
            durable=False,  # a lost poll result is polled again
            next_attempt_at=next_poll_at,
            failures=0,
            wait_kind=WAIT_POLL,
            error=None,
            queue_position=queue_position,
            progress=progress if progress is not None else before.progress,
            step=step,
            eta_s=eta_s,
        )
        moved = job is not None and any(getattr(job, k) != getattr(before, k) for k in PROGRESS_KEYS)
        if moved and job is not None and self.on_change is not None:
            self.on_change(job, True)
        return job

    def poll_now(self, job_id: str) -> Job | None:
        """A submitted task is polled at once (its last chance before the deadline expires it)."""
        return self.store.update(job_id, (S.SUBMITTED,), next_attempt_at=clock.now())

    def finished(self, job_id: str, outputs: list[Output], present: Callable[[Job], None] | None = None) -> Job | None:
        """Outputs are on disk: done. `present` (publish, later print and display) runs after job.json and before
        the job.done announcement, so whoever reacts to job.done finds the result already presented."""
        job = self.store.move(
            job_id, TRANSITIONS["finished"], outputs=outputs, progress=100, error=None, wait_kind=None
        )
        if job is not None:
            log_transition(job, "finished")
            self._after(job, present=present)
        return job

    def backoff(self, job: Job, reason: str, *, delay: float, wait_kind: str | None) -> Job | None:
        """A transient error: wait `delay` and try the same step again (a lost submit is submitted again)."""
        failures = job.failures + 1
        back_to_capture = TRANSITIONS["backoff"].get(job.state) == S.CAPTURED
        return self._move(
            "backoff",
            job.id,
            only_from=(job.state,),
            note=f"will retry in {delay:.1f}s: {reason}",
            failures=failures,
            next_attempt_at=clock.now() + delay,
            wait_kind=wait_kind,
            error=reason,
            priority=PRIORITY_BACKLOG if back_to_capture else job.priority,
        )

    def resubmit(self, job: Job, reason: str, *, delay: float, wait_kind: str | None) -> Job | None:
        """The platform rejected a task it had queued (it will never run): forget its id and submit the photo
        again after ``delay``. ``submitted_at`` stays, so the job's deadline still counts from the first task."""
        return self._move(
            "resubmit",
            job.id,
            only_from=(S.SUBMITTED,),
            note=f"task {job.remote_task_id} rejected by the platform; submitting again in {delay:.1f}s: {reason}",
            failures=job.failures + 1,
            next_attempt_at=clock.now() + delay,
            wait_kind=wait_kind,
            error=reason,
            remote_task_id=None,
            progress=None,
            queue_position=None,
        )

    def requeue_lost_submit(self, job_id: str, *, resubmits: int, note: str) -> Job | None:
        """The at-least-once window: a submit whose outcome is unknown (a crash, a lost request) goes again."""
        return self._move("requeue_lost_submit", job_id, note=note, resubmits=resubmits, next_attempt_at=0.0)

    # ------------------------------------------------------------------------------------------ endings

    def fail(self, job_id: str, reason: str, *, only_from: Iterable[JobState] | None = None) -> Job | None:
        reason = self.redact(reason)
        return self._move("fail", job_id, only_from=only_from, note=reason, error=reason, wait_kind=None)

    def expire(self, job_id: str, reason: str, *, only_from: Iterable[JobState] | None = None) -> Job | None:
        return self._move("expire", job_id, only_from=only_from, note=reason, error=reason, wait_kind=None)

    def cancel(
        self, job_id: str, note: str, *, error: str | None = None, only_from: Iterable[JobState] | None = None
    ) -> Job | None:
        return self._move("cancel", job_id, only_from=only_from, note=note, error=error or note, wait_kind=None)

    def retry(self, job_id: str, note: str) -> Job | None:
        """Send a failed, expired or cancelled job round again from its photo (a new submit); None when it is
        not in one of those states or its photo is gone."""
        job = self.store.get(job_id)
        if job is None or not Path(job.capture_path).is_file():
            return None
        return self._move(
            "retry",
            job_id,
            note=note,
            error=None,
            failures=0,
            next_attempt_at=0.0,
            wait_kind=None,
            remote_task_id=None,
            attempts=0,  # a technician's retry gets the full submit-timeout allowance again
            remote_outputs=[],
            progress=None,
            queue_position=None,
            finished_at=None,
            priority=PRIORITY_REMOTE if is_remote(job.source) else PRIORITY_GUEST,
            submitted_at=None,
            outputs=[],
        )

    def purge(
        self, jobs: Iterable[Job], states: Iterable[JobState] = FINAL_STATES - {S.DONE}, keep_printing: bool = True
    ) -> list[str]:
        """Delete given-up jobs (or, for retention, any finished ones) and their folders; a job retried meanwhile
        (no longer final) stays."""
        jobs = list(jobs)
        gone = set(self.store.delete((j.id for j in jobs), only_states=states, keep_printing=keep_printing))
        for j in jobs:
            if j.id in gone and j.result_dir and Path(j.result_dir).is_dir():
                shutil.rmtree(j.result_dir, ignore_errors=True)
        return sorted(gone)

    # ------------------------------------------------------------------------------------------ scheduling fields

    def repoint(self, job: Job, platform: str) -> Job | None:
        """A renamed [platforms.X]: the job follows its profile to the new name (job.json too, so a rebuilt
        queue keeps it)."""
        j = self.store.update(job.id, (job.state,), platform=platform)
        if j is not None:
            self._after(j, announce=False)
        return j

    def demote(self, platform: str) -> int:
        """Queued photos of a platform that went away become backlog: a guest arriving later goes first."""
        return self.store.demote(platform)

    def wake(self, platform: str, wait_kind: str) -> int:
        """Jobs of a platform waiting for `wait_kind` are due now (the platform answers again)."""
        return self.store.wake(platform, wait_kind)
