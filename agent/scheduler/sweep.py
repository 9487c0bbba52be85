"""The scheduler's periodic sweep over unfinished jobs: what time alone decides.

- A submitted task past ``task_deadline_s`` is polled once more before it expires: it may have finished while the
  daemon was stopped, or the clock stepped at start (agent/clock.py). Only a task still unfinished after that last
  poll expires, and its remote task is cancelled where the platform can.
- A download past the deadline expires (``edge-agent queue retry`` re-drives it).
- A ``submitting`` row older than ``read_timeout_s`` + a margin lost its request (a failed store write, a killed
  ``once``): it is submitted again (the at-least-once window, counted in ``resubmits``).
- A remote capture (MQTT, HTTP) still unsent after ``queue.remote_ttl_s`` expires: nobody waits for it any more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from agent.commands import is_remote
from agent.jobs.lifecycle import Lifecycle
from agent.jobs.model import Job, JobState
from agent.jobs.store import JobStore

if TYPE_CHECKING:
    from agent.config import Config

log = logging.getLogger(__name__)
S = JobState
STALE_SUBMIT_MARGIN_S = 60.0  # a `submitting` row older than read_timeout_s + this has lost its request
SCAN_LIMIT = 10_000


class Sweeper:
    def __init__(
        self, store: JobStore, lifecycle: Lifecycle, config: Callable[[], Config], cancel_remote: Callable[[Job], None]
    ) -> None:
        self.store = store
        self.lifecycle = lifecycle
        self._config = config
        self._cancel_remote = cancel_remote
        self.last_chance: set[str] = set()  # overdue tasks given their one last poll in this run

    def sweep(self, now: float, skip: Iterable[str] = (), only: set[str] | None = None) -> None:
        cfg = self._config()
        skip = set(skip)
        ttl = cfg.queue.remote_ttl_s
        states = (S.SUBMITTED, S.DOWNLOADING, S.SUBMITTING) + ((S.CAPTURED,) if ttl is not None else ())
        for job in self.store.list(states, limit=SCAN_LIMIT):
            if job.id in skip or (only is not None and job.id not in only):
                continue
            if job.state == S.CAPTURED:
                self._remote_ttl(job, now, ttl)
            elif job.state == S.SUBMITTING:
                self._lost_submit(job, now, cfg)
            else:
                self._deadline(job, now, cfg.queue.task_deadline_s)

    def _remote_ttl(self, job: Job, now: float, ttl: float | None) -> None:
        if ttl is None or not is_remote(job.source) or now - job.created_at <= ttl:
            return
        self.lifecycle.expire(
            job.id,
            f"a remote capture not sent within queue.remote_ttl_s={ttl:g}s; nobody "
            "waits for it any more (`edge-agent queue retry` sends it)",
            only_from=(S.CAPTURED,),
        )

    def _lost_submit(self, job: Job, now: float, cfg: Config) -> None:
        plat = cfg.platforms.get(job.platform or "")
        limit = (plat.read_timeout_s if plat else 60.0) + STALE_SUBMIT_MARGIN_S
        if now - job.updated_at > limit:
            self.lifecycle.requeue_lost_submit(
                job.id,
                resubmits=job.resubmits + 1,
                note="the submit request was lost: submitting again (at-least-once window)",
            )

    def _deadline(self, job: Job, now: float, deadline: float) -> None:
        started = job.submitted_at or job.created_at
        if now - started <= deadline:
            return
        if job.state == S.SUBMITTED and job.id not in self.last_chance:
            self.last_chance.add(job.id)  # poll it once more first: it may have finished while we were away
            self.lifecycle.poll_now(job.id)
            return
        self.last_chance.discard(job.id)
        what = "no answer from the platform" if job.state == S.SUBMITTED else "the result could not be fetched"
        reason = (
            f"{what} within task_deadline_s={deadline:g}s (task {job.remote_task_id}); "
            "`edge-agent queue retry` submits it again"
        )
        j = self.lifecycle.expire(job.id, reason, only_from=(job.state,))
        if j is not None and j.remote_task_id and job.state == S.SUBMITTED:
            self._cancel_remote(j)
