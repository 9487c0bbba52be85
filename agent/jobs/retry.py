"""The retry policy, written down in one place: ``RetryPolicy.decide(error, attempt, phase)``.

What happened is classified at the edge (``agent/platforms/errors.py``: a ``TransientError`` or a
``PermanentError`` with a ``kind`` and the HTTP status); what to do about it is decided here and nowhere else:

=========================================  ==========================================================================
error                                      decision
=========================================  ==========================================================================
permanent (400/404/413/422, failed task)   fail the job with the reason
auth (401/403 from the platform)           fail, and raise the platform's "API key refused" alarm
transient, kind ``network``                back off; the platform is marked unreachable and probed every
                                           ``probe_interval_s`` (its backlog wakes at the first answer) - except
                                           while fetching: the result host is often not the platform
transient, kind ``rejected`` / Retry-After back off at least as long as the server asked ("rate_limit" waits are
                                           honoured, never cut short by a probe)
transient, kind ``task_rejected`` (poll)   the platform dropped a task it had queued (EasyAI ``rejected``): it
                                           will never run, so the photo is submitted again (a new task) after
                                           the backoff, instead of polling a dead task until the deadline
``rejected`` / ``task_rejected`` with      fail with the platform's reason: the job's ``task_deadline_s``
less time left than the backoff            (counted from the first task) would pass before the next try
transient, kind ``timeout`` on submit, or back off, but after ``MAX_SUBMIT_TIMEOUTS`` such answers fail: each
a 2xx submit reply that is not JSON        try may have started a (paid) task on the platform
transient, kind ``busy`` (our own bound:   wait its retry_after (a couple of seconds), never a growing backoff
downloads per result host)
any other transient                        back off
=========================================  ==========================================================================

How long: "full jitter" exponential backoff, ``uniform(0, min(cap, base * 2**n))``, never shorter than a quarter
of the base nor than the server's ``Retry-After``. How many times: transient errors are retried until they stop
(a booth may be offline for hours; the photo must go out when it is back), bounded in time only by
``task_deadline_s`` once a task exists. The delay is stored in the job's ``next_attempt_at``, so a restart keeps it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from agent.platforms.errors import PlatformError

# Why a job waits: "network" waits end early when the platform is seen again; "rate_limit" waits are honoured.
WAIT_NETWORK = "network"
WAIT_RATE_LIMIT = "rate_limit"
WAIT_POLL = "poll"

Phase = Literal["submit", "poll", "fetch"]
MAX_SUBMIT_TIMEOUTS = 3  # a submit answered too slowly may each time have started a (paid) task
NETWORK_KINDS = frozenset({"network"})  # no answer at all: the platform is unreachable
REJECTED_KINDS = frozenset({"rejected", "task_rejected"})  # the platform would not take (or keep) the task now


@dataclass(frozen=True)
class Decision:
    retry: bool
    reason: str  # what is recorded on the job
    delay: float = 0.0  # retry: seconds until the next attempt
    wait_kind: str | None = None  # retry: network | rate_limit
    platform_down: bool = False  # mark the platform unreachable and probe it
    alarm: str | None = None  # "auth": raise the platform's key alarm
    resubmit: bool = False  # retry: the task is gone on the platform; submit the photo again (a new task)


def _maybe_accepted(error: PlatformError) -> bool:
    """The platform may have started a (paid) task: the answer came too late, or a 2xx came back unreadable."""
    if error.kind == "timeout":
        return True
    return error.kind == "protocol" and error.status is not None and 200 <= error.status < 300


@dataclass
class RetryPolicy:
    base_s: float = 2.0
    cap_s: float = 300.0
    rng: random.Random | None = None

    def decide(
        self,
        error: PlatformError,
        attempt: int,
        phase: Phase,
        *,
        failures: int = 1,
        platform: str | None = None,
        read_timeout_s: float | None = None,
        time_left_s: float | None = None,
    ) -> Decision:
        """`attempt`: submit attempts so far (this one included); `failures`: transient failures in a row,
        this one included (the backoff exponent); `time_left_s`: until the job's task deadline, once a task was
        ever submitted (None: no deadline runs yet)."""
        reason = str(error)
        if phase == "fetch" and not error.transient:
            reason = f"could not fetch the result: {reason}"
        if not error.transient:
            return Decision(False, reason, alarm="auth" if error.kind == "auth" else None)
        if phase == "submit" and _maybe_accepted(error) and attempt >= MAX_SUBMIT_TIMEOUTS:
            read = f"read_timeout_s={read_timeout_s:g}s" if read_timeout_s is not None else "read_timeout_s"
            where = f"platforms.{platform}.read_timeout_s" if platform else "read_timeout_s"
            if error.kind == "timeout":
                what, fix = f"did not answer within {read}", f"raise {where}, then `edge-agent queue retry`"
            else:
                what = "answered with something that is not a task (a success status without JSON)"
                fix = "check the platform's base_url and its proxy, then `edge-agent queue retry`"
            return Decision(
                False,
                f"the platform {what}, {attempt} times; each try may have started a task, so it is not sent again "
                f"({fix})",
            )
        if error.kind == "busy":  # our own bound (downloads per host): try again soon, never a growing backoff
            return Decision(True, reason, delay=error.retry_after or 1.0, wait_kind=WAIT_RATE_LIMIT)
        delay = self.delay(failures, error.retry_after)
        if error.kind in REJECTED_KINDS and time_left_s is not None and time_left_s < delay:
            return Decision(
                False, f"the platform would not take the task before the job's deadline (task_deadline_s): {reason}"
            )
        if error.kind == "task_rejected":
            return Decision(True, reason, delay=delay, wait_kind=WAIT_RATE_LIMIT, resubmit=True)
        return Decision(
            True,
            reason,
            delay=delay,
            wait_kind=self.wait_kind(error.kind, error.retry_after),
            platform_down=error.kind in NETWORK_KINDS and phase != "fetch",
        )

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the `failures`-th transient failure in a row (1-based)."""
        rng = self.rng or random
        ceiling = min(self.cap_s, self.base_s * (2 ** min(max(0, failures - 1), 40)))  # no float overflow
        # full jitter, but never hammer: at least a quarter of the base
        d = max(self.base_s / 4, rng.uniform(0, ceiling))
        if retry_after is not None and retry_after > 0:
            d = max(d, min(retry_after, self.cap_s * 4))
        return d

    @staticmethod
    def wait_kind(kind: str, retry_after: float | None) -> str:
        if kind in REJECTED_KINDS or retry_after is not None:
            return WAIT_RATE_LIMIT
        return WAIT_NETWORK
