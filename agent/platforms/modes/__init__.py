"""The platform modes: one module per endpoint, each declaring its profile model and its submit/poll code.

``MODES[endpoint]`` is the registry. The config builds ``ProfileConfig`` (a union discriminated on ``endpoint``)
from it, and the clients dispatch ``submit``/``poll`` through it. Adding a mode: a new module with ``MODE``, one
line below, and its simulator route.
"""

from __future__ import annotations

from agent.platforms.modes import (
    ai_generations,
    apps_run,
    generate_image,
    images_edits,
    images_generations,
    videos_generations,
    workflow_submit,
)
from agent.platforms.modes.common import Choice, Mode, ProfileBase, with_choice

MODES: dict[str, Mode] = {
    m.MODE.endpoint: m.MODE
    for m in (
        images_edits,
        images_generations,
        videos_generations,
        ai_generations,
        apps_run,
        workflow_submit,
        generate_image,
    )
}


def endpoints_of(kind: str) -> tuple[str, ...]:
    """The endpoints of one platform kind, in registry order."""
    return tuple(e for e, m in MODES.items() if m.kind == kind)


__all__ = ["MODES", "Choice", "Mode", "ProfileBase", "endpoints_of", "with_choice"]
