"""How a step's outcome moves its job: the scheduler's half that applies what a step found (agent/steps/), through
the lifecycle, the poll pacer, the retry policy and the platforms' reachability. When steps run is loop.py's."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from agent import clock
from agent.jobs.actions import cancel_remote
from agent.jobs.model import Job, JobState
from agent.memory import release_free_memory
from agent.platforms.base import PlatformClient
from agent.scheduler.pacing import Bounds
from agent.steps import Advance, Error, Fail, Outcome, Running

if TYPE_CHECKING:
    from agent.config import Config
    from agent.jobs.eta import EtaModel
    from agent.jobs.lifecycle import Lifecycle
    from agent.jobs.retry import Phase, RetryPolicy
    from agent.scheduler.pacing import PollPacer
    from agent.scheduler.reachability import Reachability

S = JobState


class OutcomeMixin:
    """Part of Scheduler (agent/scheduler/loop.py), which provides what is declared here."""

    lifecycle: Lifecycle
    pacer: PollPacer
    eta: EtaModel
    reach: Reachability
    present: Callable[[Job], None] | None
    on_alarm: Callable[[str, str, str], None]

    if TYPE_CHECKING:

        @property
        def config(self) -> Config: ...

        @property
        def retry(self) -> RetryPolicy: ...

        def _deadline_of(self, job: Job) -> float: ...

        def _platform_down(self, name: str, reason: str) -> None: ...

    def _apply(self, job: Job, phase: Phase, outcome: Outcome, client: PlatformClient) -> Job | None:
        """Apply a step's outcome; the job as it is now when its next step may follow at once, else None."""
        lc = self.lifecycle
        platform = job.platform or ""
        if isinstance(outcome, Error):
            self._on_error(job, phase, outcome.error)
            return None
        if isinstance(outcome, Fail):
            self.pacer.forget(job.id)
            lc.fail(job.id, outcome.reason, only_from=(job.state,))
            return None
        self.reach.answered(platform)
        if isinstance(outcome, Running):
            now = clock.now()
            gap, _ = self.pacer.polled(
                job,
                self._bounds(platform, now),
                now,
                eta_s=outcome.eta_s,
                progress=outcome.progress,
                queue=outcome.queue_position,
            )
            lc.progress(
                job,
                progress=outcome.progress,
                queue_position=outcome.queue_position,
                next_poll_at=now + gap,
                step=outcome.step,
                eta_s=round(outcome.eta_s) if outcome.eta_s is not None else self.eta.estimate(job, now),
            )
            return None
        assert isinstance(outcome, Advance)
        v = outcome.values
        if outcome.move == "submitted":
            now = clock.now()
            gap = self.pacer.submitted(job, self._bounds(platform, now), now)
            moved = lc.submitted(job.id, v["task_id"], next_poll_at=now + gap, since=job.submitted_at)
            if moved is None:  # cancelled while the request was on the wire: do not leave the task running
                cancel_remote(client, replace(job, remote_task_id=v["task_id"]))
        elif outcome.move == "task_done":
            # a sync endpoint answered: through `submitted` too, as the contract's state sequence says
            if job.state == S.SUBMITTING and lc.submitted(job.id, None, next_poll_at=clock.now()) is None:
                return None  # the job was cancelled while the request was on the wire
            if phase == "poll":
                self.pacer.finished(job, clock.now())
            return lc.task_done(job.id, v["remote_outputs"], note=v.get("note"))
        elif outcome.move == "finished":
            done = lc.finished(job.id, v["outputs"], present=self.present)
            if done is not None:
                self.eta.record(done)
            release_free_memory()  # the job's pictures are gone: their pages go back to the system
        elif outcome.move == "cancel":
            self.pacer.forget(job.id)
            lc.cancel(job.id, v["note"], only_from=(S.SUBMITTED,))
        else:  # pragma: no cover - a step returned a move the scheduler does not know
            raise ValueError(f"unknown move {outcome.move!r}")
        return None

    def _on_error(self, job: Job, phase: Phase, error: Any) -> None:
        platform = job.platform or ""
        plat_cfg = self.config.platforms.get(platform)
        decision = self.retry.decide(
            error,
            job.attempts,
            phase,
            failures=job.failures + 1,
            platform=platform,
            read_timeout_s=plat_cfg.read_timeout_s if plat_cfg else None,
            time_left_s=None if job.submitted_at is None else self._deadline_of(job) - time.monotonic(),
        )
        # the answer belongs to the step that ran in `job.state`: a job cancelled or retried meanwhile is not moved
        # (the CAS loses), but what the answer says about the platform still counts
        if phase == "poll" and getattr(error, "status", None) == 429:
            now = clock.now()
            self.pacer.rate_limited(platform, self._bounds(platform, now), now)
        if not decision.retry:
            self.pacer.forget(job.id)
            self.lifecycle.fail(job.id, decision.reason, only_from=(job.state,))
        elif decision.resubmit and job.state == S.SUBMITTED:
            self.lifecycle.resubmit(job, decision.reason, delay=decision.delay, wait_kind=decision.wait_kind)
        else:
            self.lifecycle.backoff(job, decision.reason, delay=decision.delay, wait_kind=decision.wait_kind)
        if decision.alarm:
            self.on_alarm(decision.alarm, platform, f"platform {platform!r} refused the API key: {error}")
        if decision.platform_down and platform:
            self._platform_down(platform, decision.reason)

    def _bounds(self, platform: str, now: float) -> Bounds:
        """How often this platform's tasks may be polled: its config, raised for a while after a 429."""
        p = self.config.platforms.get(platform)
        if p is None:
            return Bounds.of(2.0, 2.0, 2.0)
        return self.pacer.bounds(platform, p.poll_min_s, p.poll_interval_s, p.poll_max_s, now)
