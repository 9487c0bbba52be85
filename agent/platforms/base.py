"""The contract every platform client keeps, and the typed shapes replies are parsed into at the edge.

Clients are thin and symmetric: ``submit(request) -> SubmitResult``, ``poll(task_id, profile) -> TaskStatus``,
``cancel(task_id, profile)``. Everything platform-specific (URLs, envelopes, quirks) stays inside the client;
the worker only sees these types and the two error classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from agent.config import ProfileConfig

OutputType = Literal["image", "video", "audio", "text", "3d", "unknown"]
TaskState = Literal["pending", "running", "success", "failed", "cancelled"]


class PlatformError(Exception):
    """A request to a platform did not work. `str(e)` is the reason recorded on the job (never holds a secret)."""

    transient: bool = False

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None,
                 kind: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.status = status  # HTTP status, when there was one
        self.retry_after = retry_after  # seconds, from Retry-After (transient only)
        self.kind = kind  # network | timeout | http | rejected | protocol | auth | output | error


class TransientError(PlatformError):
    """Worth retrying later: connect/read errors, timeouts, 408/425/429/5xx, a platform `rejected`."""

    transient = True


class PermanentError(PlatformError):
    """Retrying will not help: 400/401/403/404/413/422, a task the platform failed, a malformed output."""


class AuthError(PermanentError):
    """401/403: the key is wrong or revoked. Fails the job and raises an alarm."""


@dataclass
class RemoteOutput:
    type: OutputType
    url: str | None = None  # absolute URL to download (clients resolve relative / bare-name outputs)
    text: str | None = None  # a text output is a string, not a URL
    title: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "url": self.url, "text": self.text, "title": self.title}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RemoteOutput":
        return cls(type=d.get("type", "unknown"), url=d.get("url"), text=d.get("text"), title=d.get("title"))


@dataclass
class TaskStatus:
    state: TaskState
    progress: int | None = None  # 0-100, None when the platform gave nothing usable
    outputs: list[RemoteOutput] = field(default_factory=list)
    message: str | None = None  # failure reason or a status note
    raw_status: str | None = None  # the platform's own word (e.g. "progressing")
    warnings: list[str] = field(default_factory=list)  # node warnings/errors reported next to outputs
    queue_position: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("success", "failed", "cancelled")


@dataclass
class SubmitRequest:
    image: bytes  # the prepared upload (JPEG)
    image_name: str  # e.g. "<job_id>.jpg"
    profile: ProfileConfig
    prompt: str | None  # profile prompt, possibly overridden remotely
    params: dict[str, Any]  # profile params merged with allowed remote overrides


@dataclass
class SubmitResult:
    """An async submit returns a task id; a sync endpoint (images.edits) returns the finished status at once."""

    task_id: str | None
    status: TaskStatus | None = None


@dataclass
class Download:
    path: Path
    content_type: str
    size: int
    type: OutputType


class PlatformClient(Protocol):
    name: str  # the [platforms.<name>] key
    kind: str  # easyai | haiyi
    supports_cancel: bool

    def submit(self, req: SubmitRequest) -> SubmitResult: ...

    def poll(self, task_id: str, profile: ProfileConfig) -> TaskStatus: ...

    def cancel(self, task_id: str, profile: ProfileConfig) -> None: ...

    def probe(self) -> None:
        """Raise TransientError when the platform cannot be reached (any HTTP answer counts as reachable)."""

    def download(self, output: RemoteOutput, dest: Path) -> Download:
        """Stream `output.url` into `dest` (suffix chosen from the Content-Type), with the size cap enforced."""

    def close(self) -> None: ...
