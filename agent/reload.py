"""Reload without a restart (SIGHUP, `edge-agent reload`, `systemctl reload edge-agent`, a pushed config).

The new file is validated first; a config that does not load is refused with its reasons (log, `status`) and the
running one stays. A good one becomes the current snapshot (``LiveConfig.swap``): everything that reads the config
at use time (profiles, queue limits, upload, display, the kiosk) follows at once, key files are read again, the
platform clients are rebuilt, and the services whose section changed are restarted: MQTT, the printer, buttons
and LEDs, the camera. Queued jobs are untouched. What only a restart can change (the folders, the API's address) is
refused or reported as "takes effect at the next restart".
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.config import ConfigError, LoadedConfig, load_config

if TYPE_CHECKING:
    from agent.runtime import Runtime

log = logging.getLogger(__name__)
CLIENT_GRACE_S = 300.0  # old platform clients stay open this long for requests already on the wire


@dataclass
class ReloadResult:
    ok: bool
    source: str
    at: float = field(default_factory=time.time)
    errors: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    next_restart: list[str] = field(default_factory=list)  # changes that take effect at the next restart

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "at": round(self.at, 3),
            "errors": self.errors,
            "restarted": self.restarted,
            "next_restart": self.next_restart,
        }

    def summary(self) -> str:
        if not self.ok:
            return "config refused, the running one stays: " + "; ".join(self.errors)
        parts = ["config reloaded"]
        if self.restarted:
            parts.append("restarted " + ", ".join(self.restarted))
        if self.next_restart:
            parts.append("at the next restart: " + ", ".join(self.next_restart))
        return "; ".join(parts)


def _section(loaded: LoadedConfig, name: str) -> Any:
    v = getattr(loaded.config, name)
    if isinstance(v, list):
        return [x.model_dump() for x in v]
    return v.model_dump() if hasattr(v, "model_dump") else v


class Reloader:
    def __init__(self, runtime: Runtime, path: Path | None) -> None:
        self.runtime = runtime
        self.path = path
        self._lock = threading.Lock()
        self._old_clients: list[tuple[float, Any]] = []
        self.last: ReloadResult | None = None

    def reload(self, source: str = "signal", path: Path | None = None) -> ReloadResult:
        """Load `path` (default: the file the daemon was started with) and apply it, or keep the running one."""
        with self._lock:
            result = self._reload(source, path or self.path)
            self.last = result
            self.runtime.agent.reload_info = result.as_dict()
            (log.info if result.ok else log.error)("reload (%s): %s", source, result.summary())
            self.runtime.agent.events.publish("agent.state")  # status, B/state and the kiosk show it
            return result

    def _reload(self, source: str, path: Path | None) -> ReloadResult:
        if path is None:
            return ReloadResult(False, source, errors=["the daemon was not started from a config file"])
        try:
            new = load_config(path)
        except ConfigError as e:
            return ReloadResult(False, source, errors=e.lines())
        old = self.runtime.live.loaded
        oc, nc = old.config, new.config
        if (oc.device.state_dir, oc.device.results_dir) != (nc.device.state_dir, nc.device.results_dir):
            return ReloadResult(
                False,
                source,
                errors=[f"{path}: device.state_dir / output_dir: the queue's folders change only with a restart"],
            )
        result = ReloadResult(True, source)
        if oc.http.listen != nc.http.listen:
            result.next_restart.append(f"[http] listen = {nc.http.listen}")
        for w in new.warnings:
            log.warning("config: %s", w)

        changed = {n for n in type(oc).model_fields if _section(old, n) != _section(new, n)}
        secrets_changed = old.secrets.all_values() != new.secrets.all_values()
        self.runtime.live.swap(new)
        from agent.logs import add_secrets

        add_secrets(new.secrets.all_values())  # log lines mask the new keys too (and still the old ones)
        if "platforms" in changed or secrets_changed:
            self._new_clients()
        if "camera" in changed or "upload" in changed:
            self._restart_camera(result)
        if secrets_changed or "device" in changed:
            changed.add("mqtt")  # its password, or the device id in its topics and client id
        self._restart_services(changed, result)
        self.runtime.agent.scheduler.wake()
        return result

    # ------------------------------------------------------------------------------------------ what changes

    def _new_clients(self) -> None:
        from agent.platforms import make_client

        agent = self.runtime.agent
        cfg, keys = agent.config, agent.secrets.platform_keys
        fresh = {
            name: make_client(name, p, keys.get(name), user_agent=f"edge-agent/{__version__}")
            for name, p in cfg.platforms.items()
        }
        now = time.monotonic()
        self._old_clients += [(now, c) for c in agent.clients.values()]
        agent.clients.clear()  # the scheduler holds this dict: it sees the new clients at its next step
        agent.clients.update(fresh)
        self._close_old_clients(now)

    def _close_old_clients(self, now: float, everything: bool = False) -> None:
        keep = []
        for since, c in self._old_clients:
            if everything or now - since > CLIENT_GRACE_S:
                try:
                    c.close()
                except Exception:  # closing an old client must never fail a reload
                    log.debug("closing an old platform client failed", exc_info=True)
            else:
                keep.append((since, c))
        self._old_clients = keep

    def _restart_camera(self, result: ReloadResult) -> None:
        from agent.camera import camera_service

        agent = self.runtime.agent
        old = agent.camera_service
        old.stop()
        agent.camera_service = camera_service(
            agent.config, None, on_change=lambda st: agent.events.publish("camera.state", **st)
        )
        if agent.started:
            agent.camera_service.start()
        result.restarted.append("camera")

    def _restart_services(self, changed: set[str], result: ReloadResult) -> None:
        rt = self.runtime
        wanted = {
            "mqtt": "mqtt" in changed,
            "printer": "printer" in changed,
            "buttons": "buttons" in changed,
            "leds": "indicators" in changed,
        }
        for name, redo in wanted.items():
            if not redo:
                continue
            if rt.drop(name):
                result.restarted.append(name)
            if rt.start_optional(name) and name not in result.restarted:
                result.restarted.append(name)

    def close(self) -> None:
        self._close_old_clients(time.monotonic(), everything=True)
