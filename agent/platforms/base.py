"""The contract every platform client keeps, and the typed shapes replies are parsed into at the edge.

Clients are thin and symmetric: ``submit(request) -> SubmitResult``, ``poll(task_id, endpoint) -> TaskStatus``,
``cancel(task_id, endpoint)``. The endpoint is the one the task was submitted with (recorded on the job), so a
profile edited while a task runs never changes how that task is polled. Everything platform-specific (URLs,
envelopes, quirks) stays inside the client and its modes; the scheduler only sees these types and the error
classes (defined in errors.py, re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from agent.platforms.errors import AuthError, PermanentError, PlatformError, TransientError

if TYPE_CHECKING:
    from agent.platforms.modes.common import ProfileBase

OutputType = Literal["image", "video", "audio", "text", "3d", "unknown"]
TaskState = Literal["pending", "running", "success", "failed", "cancelled"]


@dataclass
class RemoteOutput:
    type: OutputType
    url: str | None = None  # absolute URL to download (clients resolve relative / bare-name outputs)
    text: str | None = None  # a text output is a string, not a URL
    title: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "url": self.url, "text": self.text, "title": self.title}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RemoteOutput:
        return cls(type=d.get("type", "unknown"), url=d.get("url"), text=d.get("text"), title=d.get("title"))


@dataclass
class TaskStatus:
    state: TaskState
    progress: int | None = None  # 0-100, None when the platform gave nothing usable
    outputs: list[RemoteOutput] = field(default_factory=list)
    message: str | None = None  # failure reason or a status note
    warnings: list[str] = field(default_factory=list)  # node warnings/errors reported next to outputs
    queue_position: int | None = None  # tasks ahead of this one on the platform, when it says
    step: str | None = None  # the current node's title (Haiyi curr_node.title), when it says
    eta_s: float | None = None  # the platform's own estimate of the time left (EasyAI time_remained)

    @property
    def finished(self) -> bool:
        return self.state in ("success", "failed", "cancelled")


@dataclass
class SubmitRequest:
    image: bytes  # the prepared upload (JPEG)
    image_name: str  # e.g. "<job_id>.jpg"
    profile: ProfileBase  # one of the mode profile models; its `endpoint` picks the mode
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


class PlatformSettings(Protocol):
    """What a client reads from ``[platforms.<name>]`` (the config's platform models have these fields)."""

    @property
    def kind(self) -> str: ...
    @property
    def base_url(self) -> str: ...
    @property
    def connect_timeout_s(self) -> float: ...
    @property
    def read_timeout_s(self) -> float: ...
    @property
    def max_download_mb(self) -> int: ...
    @property
    def download_deadline_s(self) -> float: ...
    @property
    def max_downloads_per_host(self) -> int: ...
    @property
    def max_outputs(self) -> int: ...
    @property
    def allow_private_hosts(self) -> list[str]: ...


class PlatformClient(Protocol):
    name: str  # the [platforms.<name>] key
    kind: str  # easyai | haiyi
    supports_cancel: bool

    @property
    def server_date(self) -> str | None:
        """The Date header of the last probe (doctor's clock check)."""

    def submit(self, req: SubmitRequest) -> SubmitResult: ...

    def poll(self, task_id: str, endpoint: str) -> TaskStatus: ...

    def cancel(self, task_id: str, endpoint: str) -> None: ...

    def probe(self) -> None:
        """Raise TransientError when the platform cannot be reached (any HTTP answer counts as reachable)."""

    def verify(self) -> str:
        """Reachable and the key accepted (for `doctor`): a one-line summary, or the classified error."""

    def download(
        self, output: RemoteOutput, dest: Path, *, deadline: float | None = None, max_bytes: int | None = None
    ) -> Download:
        """Stream `output.url` into `dest` (suffix from the proven type). ``deadline``: a ``time.monotonic()``
        instant (the job's; the client also applies ``download_deadline_s``) -> ``TransientError(kind="timeout")``
        past it. ``max_bytes``: what the job may still store -> ``PermanentError(kind="output")`` beyond it (as
        beyond ``max_download_mb``). A host already serving ``max_downloads_per_host`` of ours ->
        ``TransientError(kind="busy", retry_after=...)`` at once. ENOSPC propagates as ``OSError``; nothing partial
        is left behind."""

    def close(self) -> None: ...


__all__ = [
    "AuthError",
    "Download",
    "OutputType",
    "PermanentError",
    "PlatformClient",
    "PlatformError",
    "PlatformSettings",
    "RemoteOutput",
    "SubmitRequest",
    "SubmitResult",
    "TaskState",
    "TaskStatus",
    "TransientError",
]
