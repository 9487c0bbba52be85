"""A profile's choices as the triggers see them: a trigger names a choice by id, never by a path or URL.

The choice model itself (``Choice``, ``ProfileBase.choices``, how a choice changes the request) belongs to the
platform modes (agent/platforms/modes/common.py). Every trigger (HTTP, MQTT, CLI, buttons, the kiosk) and
``GET /api/profiles`` reach it only through the two functions here, so the model can change in one place.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from agent.commands import CommandError

if TYPE_CHECKING:
    from agent.config import ProfileConfig

CHOICE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # what a trigger may send; anything else is refused unread


def list_choices(profile: ProfileConfig) -> list[Any]:
    """The profile's choices, in the order the config lists them."""
    return list(profile.choices)


def choice_ids(profile: ProfileConfig) -> list[str]:
    return [str(c.id) for c in list_choices(profile)]


def find_choice(profile: ProfileConfig, choice_id: str | None) -> Any | None:
    """The choice a trigger named (None: none named). Raises CommandError("not_found") naming the choices there
    are, or ("bad_request") for something that cannot be a choice id (a path, a URL, control characters)."""
    if choice_id is None:
        return None
    if not isinstance(choice_id, str) or not CHOICE_ID.match(choice_id):
        raise CommandError("bad_request", "choice must be a choice id (letters, digits, _ . -), never a path or URL")
    for c in list_choices(profile):
        if c.id == choice_id:
            return c
    ids = ", ".join(choice_ids(profile)) or "none"
    raise CommandError("not_found", f"unknown choice {choice_id!r} for profile {profile.name!r} (choices: {ids})")
