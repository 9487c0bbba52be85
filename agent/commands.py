"""What inputs (GPIO, MQTT, HTTP, CLI, kiosk) may ask of the core, and how the core says no.

Inputs never do work on their own thread: they validate, build a ``Command`` and call
``Agent.request(cmd)``, which returns a ``concurrent.futures.Future`` at once. The future resolves to a
small dict (e.g. ``{"job_id": ..., "state": "captured"}``) or raises ``CommandError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["capture", "cancel", "retry", "print", "config"]
ACTIONS: tuple[str, ...] = ("capture", "cancel", "retry", "print")


@dataclass
class Command:
    action: Action
    source: str  # button | kiosk | cli (a guest or technician at the booth) | mqtt | http (remote)
    profile: str | None = None  # capture: None = the default (first) profile
    choice: str | None = None  # capture: the id of one of the profile's choices (never a path or URL)
    job_id: str | None = None  # cancel / retry / print: None = the latest job where that makes sense
    params: dict[str, Any] = field(default_factory=dict)  # capture: remote overrides, checked against remote_params
    request_id: str | None = None


# Sources that are a person at the booth: never rate-limited, never refused for a full queue while there is disk,
# and always ahead of remote captures.
LOCAL_SOURCES = frozenset({"button", "kiosk", "cli"})


def is_remote(source: str) -> bool:
    return source not in LOCAL_SOURCES


class CommandError(Exception):
    """A refused command. `code` is stable (for MQTT/HTTP clients); `message` is for people."""

    HTTP_STATUS = {
        "bad_request": 400,
        "not_found": 404,
        "invalid_state": 409,
        "busy": 503,  # overloaded for now (the camera's waiting line, a push being applied): Retry-After says when
        "disk_full": 507,
        "camera": 503,
        "unavailable": 503,
        "printer": 503,
        "storage": 500,
        "queue_full": 503,
        "rate_limited": 429,
        "forbidden": 403,
        "rolled_back": 409,
        "limit": 429,
    }

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after  # seconds the sender should wait, when the refusal knows (HTTP Retry-After)

    @property
    def http_status(self) -> int:
        return self.HTTP_STATUS.get(self.code, 400)

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
