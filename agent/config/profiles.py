"""``[[profiles]]``: one AI effect each. The model is a union discriminated on ``endpoint``, built from the mode
registry, so each endpoint accepts exactly its own keys and a new mode needs no change here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, TypeAdapter

from agent.platforms.modes import MODES, ProfileBase
from agent.platforms.modes.generate_image import ThirdPartyModel

if TYPE_CHECKING:
    ProfileConfig = ProfileBase  # every mode's profile model is one: that is all callers may rely on
else:
    ProfileConfig = Annotated[
        Union[tuple(m.profile_model for m in MODES.values())],  # noqa: UP007 - built at runtime from the registry
        Field(discriminator="endpoint"),
    ]

_ADAPTER: TypeAdapter[ProfileBase] = TypeAdapter(ProfileConfig)


def make_profile(**fields: Any) -> ProfileBase:
    """A profile validated the way the config file's are (raises pydantic.ValidationError)."""
    return _ADAPTER.validate_python(fields)


__all__ = ["ProfileConfig", "ThirdPartyModel", "make_profile"]
