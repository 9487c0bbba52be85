"""The current config snapshot. Services read it at use time (``live.config.queue.max_in_flight``), never copy
values at construction, so a reload swaps one reference and every service sees the new config together."""

from __future__ import annotations

import threading

from agent.config import Config, LoadedConfig, Secrets
from agent.redact import Redactor


class LiveConfig:
    def __init__(self, loaded: LoadedConfig) -> None:
        self._lock = threading.Lock()
        self._set(loaded)

    def _set(self, loaded: LoadedConfig) -> None:
        self._loaded = loaded
        self._redactor = Redactor(loaded.secrets.all_values())

    @property
    def loaded(self) -> LoadedConfig:
        return self._loaded

    @property
    def config(self) -> Config:
        return self._loaded.config

    @property
    def secrets(self) -> Secrets:
        return self._loaded.secrets

    @property
    def redactor(self) -> Redactor:
        return self._redactor

    def swap(self, loaded: LoadedConfig) -> LoadedConfig:
        """Make `loaded` current; returns the previous snapshot (to roll back to)."""
        with self._lock:
            old = self._loaded
            self._set(loaded)
            # what was recorded with the old secrets may still pass through: keep masking those too
            self._redactor = Redactor([*old.secrets.all_values(), *loaded.secrets.all_values()])
            return old
