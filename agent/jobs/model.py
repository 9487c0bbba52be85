"""The one record every step works on."""

from __future__ import annotations

import copy
import enum
import json
from dataclasses import dataclass, field, fields
from typing import Any


class JobState(str, enum.Enum):
    CAPTURED = "captured"  # photo durable on disk, waiting (or backing off) to be submitted
    SUBMITTING = "submitting"  # a submit request is (or was, before a crash) on the wire
    SUBMITTED = "submitted"  # the platform holds a task: poll remote_task_id
    DOWNLOADING = "downloading"  # the platform finished: fetch outputs
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # task_deadline_s passed without an answer

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED})
ACTIVE_STATES = frozenset({JobState.SUBMITTING, JobState.SUBMITTED, JobState.DOWNLOADING})
# A person at the booth goes first, then remote captures (MQTT, HTTP), then the backlog (photos that met a
# transient error or were taken while their platform was away).
PRIORITY_GUEST, PRIORITY_REMOTE, PRIORITY_BACKLOG = 2, 1, 0

# every state a job is worked in (not final), in pipeline order
WORK_STATES = (JobState.CAPTURED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.DOWNLOADING)


@dataclass
class Output:
    """One downloaded result, as it appears in job.json, MQTT and the API."""

    type: str  # image | video | audio | text | 3d
    path: str | None = None  # local file (None for text)
    url: str | None = None  # where the local HTTP API serves it
    text: str | None = None
    content_type: str | None = None
    size: int | None = None


@dataclass
class Job:
    id: str
    profile: str
    source: str
    state: JobState
    created_at: float
    updated_at: float
    capture_path: str
    platform: str | None = None
    endpoint: str | None = None  # the platform mode it was submitted with; polling uses this, not the profile
    attempts: int = 0  # submit attempts
    failures: int = 0  # transient failures in a row (the backoff exponent); reset by any success
    next_attempt_at: float = 0.0
    remote_task_id: str | None = None
    progress: int | None = None
    queue_position: int | None = None  # tasks ahead of it on the platform, when the platform says
    stage: str | None = None  # what a guest reads: queued | uploading | running | downloading (set by the steps)
    step: str | None = None  # the platform's current node title, when it says
    eta_s: float | None = None  # seconds until the result is expected (platform's time_remained, else history)
    choice: str | None = None  # the profile choice the trigger named (a garment, a style), if any
    share_token: str | None = None  # unguessable token of the job's share page (/share/<token>)
    error: str | None = None
    outputs: list[Output] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # remote overrides (validated against remote_params)
    priority: int = 2  # PRIORITY_GUEST, PRIORITY_REMOTE or PRIORITY_BACKLOG: the scheduler takes higher first
    capture_bytes: int = 0  # size of the kept photo (the queue's byte bound counts it)
    wait_kind: str | None = None  # why next_attempt_at is in the future: network | rate_limit | poll
    submitted_at: float | None = None
    finished_at: float | None = None
    remote_outputs: list[dict[str, Any]] = field(default_factory=list)  # what the platform returned, to fetch
    result_dir: str | None = None
    request_id: str | None = None
    resubmits: int = 0  # submits repeated because a crash hit the at-least-once window
    history: list[dict[str, Any]] = field(default_factory=list)  # transitions and errors, for job.json

    def public(self) -> dict[str, Any]:
        """What the API, MQTT and job.json show (no internals that could hold paths of secrets). Built field by
        field: ``dataclasses.asdict`` deep-copies every value, and this runs on every move of every job."""
        d = {name: getattr(self, name) for name in _PUBLIC_FIELDS}
        d["state"] = self.state.value
        d["outputs"] = [dict(vars(o)) for o in self.outputs]
        d["params"] = copy.deepcopy(self.params)  # remote overrides may nest; a caller's edit must not reach the job
        d["history"] = [dict(e) for e in self.history]
        return d

    def to_json(self) -> str:
        # one line: json's C encoder (indent= would use its Python one, four times slower, on every move);
        # `edge-agent queue show` prints a job indented for a person
        return json.dumps(self.public(), sort_keys=True)


_PUBLIC_FIELDS = tuple(f.name for f in fields(Job) if f.name != "remote_outputs")
