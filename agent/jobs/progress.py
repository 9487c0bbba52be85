"""What a guest reads about a job: its stage, derived from the state (and the platform's queue), never stored apart
from it. The store applies it on every write, so the job row, job.json, the API, the events and MQTT agree.

    captured → queued · submitting → uploading (running for a sync endpoint: it answers only with the picture) ·
    submitted → running (queued while the platform says tasks are
    ahead) · downloading → downloading · done → done · failed, expired, cancelled → failed
"""

from __future__ import annotations

from typing import Any

from agent.jobs.model import Job, JobState

S = JobState
STAGES = ("queued", "uploading", "running", "downloading", "done", "failed")
PROGRESS_KEYS = ("progress", "stage", "step", "queue_position", "eta_s")  # the progress object, in every job view

_BY_STATE = {
    S.CAPTURED: "queued",
    S.SUBMITTING: "uploading",
    S.SUBMITTED: "running",
    S.DOWNLOADING: "downloading",
    S.DONE: "done",
}


def stage_of(state: JobState, queue_position: int | None, endpoint: str | None = None) -> str:
    if state == S.SUBMITTED and queue_position:
        return "queued"  # on the platform but behind other tasks
    if state == S.SUBMITTING and endpoint is not None and not _is_async(endpoint):
        return "running"  # a sync endpoint answers only with the picture: the upload is seconds, the AI the rest
    return _BY_STATE.get(state, "failed")


def _is_async(endpoint: str) -> bool:
    from agent.platforms.modes import MODES  # the mode registry knows; platforms never import the queue

    mode = MODES.get(endpoint)
    return mode is None or mode.is_async


def settle(job: Job) -> None:
    """Make the guest-facing fields true to the job's state (called by the store before each write)."""
    job.stage = stage_of(job.state, job.queue_position, job.endpoint)
    if job.state != S.SUBMITTED:
        job.step = None  # a node title and the platform's queue mean something only while the task is there
        job.queue_position = None
    if job.state.final:
        job.eta_s = None


def progress_of(job: Job) -> dict[str, Any]:
    """The progress object: {progress, stage, step, queue_position, eta_s}."""
    return {k: getattr(job, k) for k in PROGRESS_KEYS}
