"""The catalogue on MQTT: the retained ``B/profiles`` document, and the booth's current selection for Home Assistant.

``B/profiles`` (retained) is what ``GET /api/profiles`` answers, with absolute thumbnail URLs, so a dashboard can
show the choices without asking the HTTP API where they are.

Home Assistant cannot pass one entity's state into another's command, so the selection lives on the booth: HA's
``select`` entity publishes an option (``profile`` or ``profile/choice``, ids only) to ``B/selection/set``; the
booth keeps it and says it back on the retained ``B/selection``; HA's "Capture selected" button sends an ordinary
``cmd/capture`` with ``"selected": true``, which the booth turns into that profile and choice. A selection that is
no longer in the config (a reload removed it) falls back to the default profile, and says so on ``B/selection``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from agent.choices import list_choices
from agent.httpapi.profiles import profiles_view

if TYPE_CHECKING:
    from agent.config import Config


def catalogue(config: Config, public_base: str) -> dict[str, Any]:
    """B/profiles: the profiles and their choices, thumbnail URLs made absolute."""
    doc = profiles_view(config)
    for p in doc["profiles"]:
        for c in p["choices"]:
            if c["thumbnail_url"]:
                c["thumbnail_url"] = public_base.rstrip("/") + c["thumbnail_url"]
    return doc


def options(config: Config) -> list[str]:
    """What the select offers: each profile, then each of its choices as ``profile/choice``."""
    out: list[str] = []
    for p in config.profiles:
        out.append(p.name)
        out += [f"{p.name}/{c.id}" for c in list_choices(p)]
    return out


class Selection:
    """The option Home Assistant last selected (thread-safe; set on paho's thread, read by the intake)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._option: str | None = None

    def set(self, config: Config, payload: bytes) -> str | None:
        """Take an option from B/selection/set; None (and nothing changes) when it is not one of the options."""
        try:
            option = payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            return None
        if option not in options(config):
            return None
        with self._lock:
            self._option = option
        return option

    def current(self, config: Config) -> str:
        """The selected option if the config still has it, else the default profile."""
        with self._lock:
            option = self._option
        offered = options(config)
        if option in offered:
            return option
        return offered[0] if offered else ""

    def target(self, config: Config) -> tuple[str | None, str | None]:
        """(profile, choice) of the current selection."""
        profile, _, choice = self.current(config).partition("/")
        return profile or None, choice or None
