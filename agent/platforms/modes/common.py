"""What every platform mode shares: the common profile fields, choices, and the ``Mode`` record the registry holds.

Choices: a profile may offer a catalogue (garments, styles, backgrounds) as ``[[profiles.choices]]``. A trigger
names a choice by its id, never a path or URL; ``with_choice(profile, id)`` gives the effective profile:

- ``prompt`` replaces the profile's prompt;
- ``params`` and ``files`` are merged key by key (the choice wins);
- ``images`` replaces the profile's static image list (the choice names the whole list, so the order of what is
  sent stays visible in one place).

Which of those keys a choice may set depends on the endpoint: each mode declares its own choice model (only the
keys that endpoint uses), so a choice setting ``images`` for ``apps.run`` is an "unknown key" at config load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import Field, field_validator, model_validator

from agent.platforms.base import SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.errors import PermanentError
from agent.platforms.statics import StaticImage
from agent.schema import ExistingFile, _Model

# Keys a remote trigger may never override: they name local files or make the platform fetch a URL.
NEVER_REMOTE = ("image", "images", "mask", "files", "workflow_file", "url", "image_url", "last_frame")
CHOICE_ID = r"^[A-Za-z0-9_.-]+$"


class Choice(_Model):
    """One entry of a profile's catalogue. Modes subclass it to drop the keys their endpoint has no use for."""

    id: str = Field(pattern=CHOICE_ID, description="what a trigger names (kiosk, MQTT, HTTP, button)")
    label: str | None = Field(None, description="what the kiosk shows; default: the id")
    thumbnail: StaticImage | None = Field(None, description="a picture of the choice for the kiosk (PNG/JPEG)")
    prompt: str | None = Field(None, description="replaces the profile's prompt")
    params: dict[str, Any] = Field(default_factory=dict, description="merged over the profile's params")
    images: list[StaticImage] = Field(default_factory=list, description="replaces the profile's static images")
    files: dict[str, ExistingFile] = Field(default_factory=dict, description="merged over the profile's files")

    @property
    def title(self) -> str:
        return self.label or self.id


class ProfileBase(_Model):
    """The keys every ``[[profiles]]`` entry has; each mode adds its own (and only those are accepted)."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+$", description="what triggers ask for (button, MQTT, HTTP); letters, digits, _ . -"
    )
    platform: str = Field(description="the [platforms.<name>] that runs this effect")
    endpoint: str = Field(description="the platform API this profile calls; it decides which other keys apply")
    label: str | None = Field(None, description="what the kiosk shows; default: the name")
    prompt: str | None = Field(None, description="text sent with the photo; a trigger may override it if allowed")
    params: dict[str, Any] = Field(
        default_factory=dict, description="extra parameters passed to the platform as they are"
    )
    remote_params: list[str] = Field(
        default_factory=list, description="params (and prompt) an MQTT/HTTP trigger may override"
    )
    choices: Sequence[Choice] = Field(
        default_factory=list, description="a catalogue a trigger picks from by id: [[profiles.choices]]"
    )

    # what a choice may set for this endpoint (each mode narrows it); "id", "label", "thumbnail" always
    choice_keys: ClassVar[frozenset[str]] = frozenset({"prompt", "params"})
    takes_photo: ClassVar[bool] = True  # False: the capture is not sent (text-only endpoints)

    @field_validator("choices", mode="before")
    @classmethod
    def _choice_keys_apply(cls, v: Any) -> Any:
        allowed = cls.choice_keys | {"id", "label", "thumbnail"}
        for i, c in enumerate(v if isinstance(v, list) else []):
            extra = [k for k in (c if isinstance(c, dict) else {}) if k in Choice.model_fields and k not in allowed]
            if extra:
                endpoint = cls.model_fields["endpoint"].annotation
                name = getattr(endpoint, "__args__", ("this endpoint",))[0]
                raise ValueError(
                    f"choice {c.get('id', i)!r} (choices[{i}]) sets {', '.join(extra)}, which endpoint {name} does "
                    f"not take (its choices set {', '.join(sorted(cls.choice_keys))})"
                )
        return v

    @field_validator("remote_params")
    @classmethod
    def _no_paths_or_urls(cls, v: list[str]) -> list[str]:
        bad = [r for r in v if r in NEVER_REMOTE]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} can never be set remotely (paths and URLs)")
        return v

    @model_validator(mode="after")
    def _unique_choices(self) -> ProfileBase:
        ids = [c.id for c in self.choices]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"choices: duplicate id {', '.join(map(repr, dup))}")
        return self

    def sends_photo(self) -> bool:
        """Whether the capture goes to the platform (text-only endpoints and workflows send none)."""
        return type(self).takes_photo

    def choice(self, choice_id: str) -> Choice:
        """The choice with this id; KeyError (naming the ones there are) when there is none."""
        for c in self.choices:
            if c.id == choice_id:
                return c
        raise KeyError(f"unknown choice {choice_id!r} for profile {self.name!r} (choices: {self.choice_ids() or '-'})")

    def choice_ids(self) -> str:
        return ", ".join(c.id for c in self.choices)


P = TypeVar("P", bound=ProfileBase)


def with_choice(profile: P, choice_id: str | None) -> P:
    """The effective profile for a job: ``profile`` with the named choice applied (see the module docstring);
    ``profile`` itself for None. KeyError for an unknown id."""
    if not choice_id:
        return profile
    c = profile.choice(choice_id)
    update: dict[str, Any] = {}
    if c.prompt is not None:
        update["prompt"] = c.prompt
    if c.params:
        update["params"] = {**profile.params, **c.params}
    if "images" in type(c).model_fields and c.images:
        update["images"] = list(c.images)
    if "files" in type(c).model_fields and c.files:
        update["files"] = {**getattr(profile, "files", {}), **c.files}
    return profile.model_copy(update=update)


def profile_as(req: SubmitRequest, model: type[P]) -> P:
    """The request's profile as the mode's own model (a profile of another mode here is a bug, not a config error)."""
    if not isinstance(req.profile, model):
        raise PermanentError(
            f"profile {req.profile.name}: endpoint {req.profile.endpoint} cannot be sent as {model.__name__}",
            kind="error",
        )
    return req.profile


def static_paths(profile: ProfileBase) -> list[tuple[str, Path]]:
    """Every local file a profile (and its choices) sends, as (key, path): what config load reads once."""
    out: list[tuple[str, Path]] = []
    for key in ("mask", "last_frame"):
        path = getattr(profile, key, None)
        if isinstance(path, Path):
            out.append((key, path))
    for i, path in enumerate(getattr(profile, "images", []) or []):
        out.append((f"images[{i}]", path))
    for name, path in (getattr(profile, "files", {}) or {}).items():
        out.append((f"files.{name}", path))
    for n, c in enumerate(profile.choices):
        for i, path in enumerate(getattr(c, "images", []) or []):
            out.append((f"choices[{n}].images[{i}]", path))
        for name, path in (getattr(c, "files", {}) or {}).items():
            out.append((f"choices[{n}].files.{name}", path))
    return out


@dataclass(frozen=True)
class Mode:
    """One platform endpoint as a unit: its profile model, how a task is submitted and how it is polled."""

    kind: str  # the platform kind it belongs to: easyai | haiyi
    endpoint: str  # the profile's `endpoint` value
    profile_model: type[ProfileBase]
    is_async: bool  # False: a submit usually answers with the finished result (images.edits)
    submit: Callable[[Any, SubmitRequest], SubmitResult]  # (client, request)
    poll: Callable[[Any, str], TaskStatus]  # (client, task_id)
