"""What every platform mode shares: the common profile fields and the ``Mode`` record the registry holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import Field, field_validator

from agent.platforms.base import SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.errors import PermanentError
from agent.schema import ExistingFile, _Model

# Keys a remote trigger may never override: they name local files or make the platform fetch a URL.
NEVER_REMOTE = ("image", "images", "mask", "files", "workflow_file", "url", "image_url")


# --- MINIMAL STAND-IN (helper B, branch `progress`) -----------------------------------------------------------
# The choice model is helper A's (branch `modes`); this is only the interface from design-s3.md so B's triggers can
# be tested. At merge the lead keeps A's `Choice`, `ProfileBase.choices`, `ProfileBase.choice` and `with_choice`.
class Choice(_Model):
    """One entry of a profile's catalogue (a garment, a style): what a trigger names by `id`."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="what a trigger names; letters, digits, _ . -")
    label: str = Field("", description="what the kiosk shows")
    thumbnail: ExistingFile | None = Field(None, description="picture the kiosk shows for it")
    images: list[ExistingFile] = Field(default_factory=list, description="static images this choice sends")
    files: dict[str, ExistingFile] = Field(default_factory=dict, description="static files this choice sends")
    params: dict[str, Any] = Field(default_factory=dict, description="params this choice sets")


# --- end of the stand-in ----------------------------------------------------------------------------------------


class ProfileBase(_Model):
    """The keys every ``[[profiles]]`` entry has; each mode adds its own (and only those are accepted)."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+$", description="what triggers ask for (button, MQTT, HTTP); letters, digits, _ . -"
    )
    platform: str = Field(description="the [platforms.<name>] that runs this effect")
    endpoint: str = Field(description="the platform API this profile calls; it decides which other keys apply")
    prompt: str | None = Field(None, description="text sent with the photo; a trigger may override it if allowed")
    params: dict[str, Any] = Field(
        default_factory=dict, description="extra parameters passed to the platform as they are"
    )
    remote_params: list[str] = Field(
        default_factory=list, description="params (and prompt) an MQTT/HTTP trigger may override"
    )

    choices: list[Choice] = Field(default_factory=list, description="a catalogue a trigger picks from by id")

    def choice(self, choice_id: str) -> Choice:
        """The choice with this id (KeyError when there is none)."""
        for c in self.choices:
            if c.id == choice_id:
                return c
        raise KeyError(choice_id)

    @field_validator("remote_params")
    @classmethod
    def _no_paths_or_urls(cls, v: list[str]) -> list[str]:
        bad = [r for r in v if r in NEVER_REMOTE]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} can never be set remotely (paths and URLs)")
        return v


P = TypeVar("P", bound=ProfileBase)


def profile_as(req: SubmitRequest, model: type[P]) -> P:
    """The request's profile as the mode's own model (a profile of another mode here is a bug, not a config error)."""
    if not isinstance(req.profile, model):
        raise PermanentError(
            f"profile {req.profile.name}: endpoint {req.profile.endpoint} cannot be sent as {model.__name__}",
            kind="error",
        )
    return req.profile


@dataclass(frozen=True)
class Mode:
    """One platform endpoint as a unit: its profile model, how a task is submitted and how it is polled."""

    kind: str  # the platform kind it belongs to: easyai | haiyi
    endpoint: str  # the profile's `endpoint` value
    profile_model: type[ProfileBase]
    is_async: bool  # False: a submit usually answers with the finished result (images.edits)
    submit: Callable[[Any, SubmitRequest], SubmitResult]  # (client, request)
    poll: Callable[[Any, str], TaskStatus]  # (client, task_id)
