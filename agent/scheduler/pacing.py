"""When to poll a submitted task next: rarely while its end is far, often around its expected end.

What is known about a task, best first:

1. the platform's own estimate of the time left (EasyAI ``time_remained``, whole seconds, so the end lies within
   the second before it);
2. its progress rate since the first poll that saw it under way (progress alone, measured from the submit, would
   count its queue time as work);
3. this device's history of the profile's task times (agent/jobs/eta.py, ``task_times``): the median, with the
   spread of the recorded times as the uncertainty.

With an estimate the next poll is at the opening of the window the end is expected in (never later than
``poll_max_s`` from now, so a wrong estimate is corrected), then every ``gap`` inside it, where the gap is a third
of the window's half-width bounded by ``poll_min_s`` and ``poll_interval_s``: a tight estimate polls faster, but
only for a short while. Of the estimates at hand the tightest is used; with none new, the last one, aged. Past the window the gap grows back to ``poll_interval_s``. Without any estimate, or while the task
waits in the platform's queue, it is polled every ``poll_interval_s`` (stretched by the queue position, up to
``poll_max_s``; with a history, no later than a typical task time per place ahead). A 429 from a platform raises that platform's floor (doubling, up to ``poll_interval_s`` x 4) for
a minute; it decays back by itself.

The pacer keeps a little per-job memory in this process (when its submit was answered, the last poll that saw it
running and its progress); after a restart the job's stored ``submitted_at`` stands in for it.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass

from agent.jobs.eta import EtaModel
from agent.jobs.model import Job

RATE_LIMIT_HOLD_S = 60.0  # how long a 429 keeps a platform's poll floor raised
MAX_TRACKED = 512  # per-job memory kept at most (a task lives in it from its submit to its finishing poll)
TIME_REMAINED_STEP_S = 1.0  # platforms give time_remained in whole seconds (rounded up)


@dataclass(frozen=True)
class Bounds:
    floor: float  # poll_min_s: the shortest gap
    plain: float  # poll_interval_s: the gap while nothing tells when the task ends
    ceiling: float  # poll_max_s: the longest gap

    @classmethod
    def of(cls, floor: float, plain: float, ceiling: float) -> Bounds:
        floor = min(floor, plain, ceiling)
        return cls(floor, max(floor, min(plain, ceiling)), max(floor, ceiling))


@dataclass(frozen=True)
class Estimate:
    left: float  # seconds from now to the expected end
    spread: float  # the end is expected within left ± spread
    source: str  # platform | progress | history


def gap_for(
    est: Estimate | None, bounds: Bounds, *, queue_position: int | None = None, task_s: float | None = None
) -> float:
    """Seconds until the next poll (pure: the policy, tested on its own). `task_s`: this profile's typical task
    time, when known: a queued task waits about that long per place ahead of it (less with several workers), so
    a queue of short tasks is not polled as slowly as one of long ones."""
    if est is None:
        if queue_position:
            gap = min(bounds.ceiling, bounds.plain * (1 + 0.5 * queue_position))
            if task_s is not None:
                gap = min(gap, max(bounds.floor, task_s * queue_position))
            return gap
        return bounds.plain
    fast = min(bounds.plain, max(bounds.floor, est.spread / 3))
    opens = est.left - est.spread
    if opens > fast:  # the end is still ahead of the window: sleep to its opening, re-asking now and then
        return min(bounds.ceiling, opens)
    overdue = -(est.left + est.spread)
    if overdue > 0:  # later than expected: back off towards the plain interval
        return min(bounds.plain, fast + overdue / 4)
    return fast


@dataclass
class _Seen:
    answered: float  # when the submit was answered (clock.now())
    running: float | None = None  # the last poll that saw it still running
    first: tuple[float, int] | None = None  # (when, progress) of the first poll that saw it under way
    last: tuple[float, Estimate] | None = None  # the last estimate, and when it was made


class PollPacer:
    def __init__(self, eta: EtaModel) -> None:
        self.eta = eta
        self._lock = threading.Lock()
        self._jobs: dict[str, _Seen] = {}
        self._limited: dict[str, tuple[float, float]] = {}  # platform -> (raised floor, until when)

    def bounds(self, platform: str, floor: float, plain: float, ceiling: float, now: float) -> Bounds:
        with self._lock:
            raised = self._limited.get(platform)
            if raised is not None and raised[1] <= now:
                del self._limited[platform]
                raised = None
        return Bounds.of(max(floor, raised[0]) if raised else floor, plain, ceiling)

    def rate_limited(self, platform: str, bounds: Bounds, now: float) -> None:
        """The platform answered 429: poll it less often for a while (the job itself waits its Retry-After)."""
        with self._lock:
            old = self._limited.get(platform, (bounds.floor, now))[0]
            self._limited[platform] = (min(bounds.plain * 4, max(old * 2, bounds.floor * 2)), now + RATE_LIMIT_HOLD_S)

    def submitted(self, job: Job, bounds: Bounds, now: float) -> float:
        """The submit was answered: the gap to the first poll."""
        with self._lock:
            if len(self._jobs) >= MAX_TRACKED:  # jobs that ended without a finishing poll (expired, failed)
                for old in sorted(self._jobs, key=lambda k: self._jobs[k].answered)[: MAX_TRACKED // 4]:
                    del self._jobs[old]
            self._jobs[job.id] = _Seen(now)
        est = self._history(job.profile, 0.0)
        # nothing known yet: ask soon, since the first answer may carry the platform's own estimate
        return gap_for(est, bounds) if est else min(bounds.plain, max(bounds.floor, 1.0))

    def polled(
        self, job: Job, bounds: Bounds, now: float, *, eta_s: float | None, progress: int | None, queue: int | None
    ) -> tuple[float, Estimate | None]:
        """A poll saw the task still running: the gap to the next poll, and the estimate it was based on."""
        with self._lock:
            seen = self._jobs.setdefault(job.id, _Seen(job.submitted_at or now))
            seen.running = now
            if queue:
                seen.first = None  # still queued: its run (and its progress rate) has not begun
            elif progress is not None and 0 < progress < 100 and seen.first is None:
                seen.first = (now, progress)
            first, last, answered = seen.first, seen.last, seen.answered
        found = [] if queue else self._estimates(job.profile, now - answered, eta_s, progress, first, now)
        if found:
            est: Estimate | None = min(found, key=lambda e: e.spread)
        elif last is not None and not queue:  # no new knowledge: the last estimate, as time has moved on
            est = Estimate(last[1].left - (now - last[0]), last[1].spread, last[1].source)
        else:
            est = None
        if est is not None:
            with self._lock:
                seen.last = (now, est)
        typical = self._history(job.profile, 0.0) if queue else None
        return gap_for(est, bounds, queue_position=queue, task_s=typical.left if typical else None), est

    def finished(self, job: Job, now: float) -> None:
        """A poll saw the task finished: its time (less half the last gap) joins the profile's history."""
        with self._lock:
            seen = self._jobs.pop(job.id, None)
        if seen is None:
            return
        last = seen.running if seen.running is not None else seen.answered
        self.eta.record_task(job.profile, (last + now) / 2 - seen.answered)

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def _estimates(
        self,
        profile: str,
        elapsed: float,
        eta_s: float | None,
        progress: int | None,
        first: tuple[float, int] | None,
        now: float,
    ) -> list[Estimate]:
        found = []
        if eta_s is not None and eta_s >= 0:
            half = TIME_REMAINED_STEP_S / 2
            found.append(Estimate(max(0.0, eta_s - half), half, "platform"))
        if progress is not None and first is not None and progress > first[1] and now - first[0] >= 0.5:
            done = progress - first[1]
            left = (100 - progress) * (now - first[0]) / done
            # whole percents: the rate is known to about one part in `done`
            found.append(Estimate(left, 0.1 + left * (1 / done + 0.05), "progress"))
        elif progress is not None and 0 < progress < 100 and elapsed > 0:
            # one sample: the rate since the submit (any time it queued makes this late, hence the wide window)
            left = (100 - progress) * elapsed / progress
            found.append(Estimate(left, 0.2 + 0.3 * left, "progress"))
        hist = self._history(profile, elapsed)
        if hist is not None:
            found.append(hist)
        return found

    def _history(self, profile: str, elapsed: float) -> Estimate | None:
        times = self.eta.task_times(profile)
        if not times:
            return None
        typical = statistics.median(times)
        inner = sorted(times)[1:-1] if len(times) >= 5 else times  # one odd run does not widen the window
        spread = max(0.1, (max(inner) - min(inner)) / 2, 0.1 * typical)
        return Estimate(typical - elapsed, spread, "history")
