"""The pipeline's steps over one Job: capture → prepare → submit → poll → fetch → present.

Each step is a plain module: it does its I/O and returns an ``Outcome`` saying what happened. It never writes a
job's state; the scheduler (agent/scheduler/loop.py) applies the outcome through the lifecycle
(agent/jobs/lifecycle.py), asking the retry policy (agent/jobs/retry.py) what a platform error means.

=========  ==================================================  ==============================================
step       does                                                returns
=========  ==================================================  ==============================================
capture    photo + first job.json durable (before the ack)     the new Job (the core commits it: `captured`)
prepare    the upload: shrunk, upright, metadata stripped      a SubmitRequest (or raises PermanentError)
submit     one request to the platform                         Advance(submitted | task_done) or Error
poll       one status request for the recorded endpoint        Running, Advance(task_done | cancel) or Error
fetch      every output downloaded at once (links expire)      Advance(finished) or Error / Fail
present    after the outputs are on disk: publish the result   - (auto-print and display join here)
=========  ==================================================  ==============================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.platforms.errors import PlatformError


@dataclass(frozen=True)
class Advance:
    """Move the job on: `move` is a lifecycle move (submitted, task_done, finished, cancel) with its values."""

    move: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Running:
    """The task is still running on the platform: poll it again later."""

    progress: int | None = None
    queue_position: int | None = None
    step: str | None = None  # the current node's title, when the platform says
    eta_s: float | None = None  # the platform's own estimate of the time left, when it gives one


@dataclass(frozen=True)
class Error:
    """A platform error; the retry policy decides between backing off and failing."""

    error: PlatformError


@dataclass(frozen=True)
class Fail:
    """Not the platform's doing and not worth retrying (the photo is gone, the disk refused the result)."""

    reason: str


Outcome = Advance | Running | Error | Fail
