"""Fleet config push: `B/cmd/config {"request_id", "config": "<TOML>"}` replaces this booth's config from afar.

Off unless the device's own file says ``[mqtt] allow_config_push = true``. A pushed config:

1. must not carry a secret (``api_key``, ``password``, ``token`` written inline): only ``*_file`` / ``*_env``
   references travel; must keep ``device.id``, the folders and ``allow_config_push = true`` (a push must never lock
   the fleet out of the next one);
2. is validated exactly like the file on disk (relative paths are relative to the device's config folder);
3. is written to ``<state_dir>/config/pushed.toml`` (the folder the service may write; ``/etc`` stays read-only) and
   applied by a reload;
4. must come up healthy within ``[mqtt] config_push_health_s``: every service alive and MQTT connected again.
   Otherwise the previous file is put back and reloaded by itself, and the answer says why.

At start the daemon runs the pushed file when it is newer than the device's own file; a technician who edits
``/etc/edge-agent/config.toml`` afterwards wins (the newer file is the one in force).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import tomllib
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.commands import Command, CommandError
from agent.config import ConfigError, LoadedConfig, load_config, parse_config
from agent.durable import write_durable

if TYPE_CHECKING:
    from agent.runtime import Runtime

log = logging.getLogger(__name__)
MAX_CONFIG_BYTES = 60 * 1024
_INLINE_SECRETS = ("api_key", "password", "token")


def pushed_path(state_dir: Path) -> Path:
    return state_dir / "config" / "pushed.toml"


def effective(base: LoadedConfig, base_path: Path) -> tuple[LoadedConfig, Path]:
    """The config to run: the pushed one when pushes are allowed and it is newer than the device's own file."""
    pushed = pushed_path(base.config.device.state_dir)
    if not base.config.mqtt.allow_config_push or not pushed.is_file():
        return base, base_path
    try:
        if pushed.stat().st_mtime <= base_path.stat().st_mtime:
            log.info("config: %s is newer than the pushed config; running it", base_path)
            return base, base_path
        return load_config(pushed), pushed
    except ConfigError as e:
        log.error("config: the pushed config does not load (%s); running %s", "; ".join(e.lines()), base_path)
    except OSError as e:
        log.error("config: cannot read the pushed config (%s); running %s", e.strerror, base_path)
    return base, base_path


def _inline_secrets(node: Any, where: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{where}.{k}" if where else str(k)
            if k in _INLINE_SECRETS:
                found.append(key)
            else:
                found += _inline_secrets(v, key)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _inline_secrets(v, f"{where}[{i}]")
    return found


class ConfigPush:
    """Runs one push at a time on its own thread (the health wait must not hold the core or the MQTT thread)."""

    def __init__(self, runtime: Runtime, base_path: Path | None) -> None:
        self.runtime = runtime
        self.base_path = base_path
        self._lock = threading.Lock()

    def request(self, cmd: Command) -> Future[dict[str, Any]]:
        fut: Future[dict[str, Any]] = Future()
        if not self._lock.acquire(blocking=False):
            fut.set_exception(CommandError("busy", "another config push is being applied"))
            return fut

        def run() -> None:
            try:
                fut.set_result(self._push(str(cmd.params.get("config", ""))))
            except CommandError as e:
                fut.set_exception(e)
            except Exception as e:  # never leave the sender without an answer
                log.exception("config push failed")
                fut.set_exception(CommandError("error", f"config push failed: {type(e).__name__}"))
            finally:
                self._lock.release()

        threading.Thread(target=run, name="config-push", daemon=True).start()
        return fut

    def _push(self, text: str) -> dict[str, Any]:
        rt = self.runtime
        current = rt.live.config
        if not current.mqtt.allow_config_push:
            raise CommandError("forbidden", "config push is off on this device ([mqtt] allow_config_push = false)")
        if self.base_path is None:
            raise CommandError("unavailable", "this agent was not started from a config file")
        if len(text.encode()) > MAX_CONFIG_BYTES:
            raise CommandError("bad_request", f"config larger than {MAX_CONFIG_BYTES // 1024} KB")
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise CommandError("bad_request", f"config: TOML syntax error: {e}") from None
        secrets = _inline_secrets(raw)
        if secrets:
            raise CommandError(
                "bad_request",
                f"config: {', '.join(secrets)}: secrets never travel in a pushed config; "
                "use the *_file or *_env keys (the secret stays on the device)",
            )
        try:  # as if it were the device's own file: relative paths from its folder
            new = parse_config(raw, self.base_path)
        except ConfigError as e:
            issues = [f"{i.key}: {i.message}" if i.key else i.message for i in e.issues]
            raise CommandError("bad_request", "config: " + "; ".join(issues)) from None
        nc = new.config
        kept = {
            "device.id": (current.device.id, nc.device.id),
            "device.state_dir": (current.device.state_dir, nc.device.state_dir),
            "device.output_dir": (current.device.results_dir, nc.device.results_dir),
            "mqtt.allow_config_push": (True, nc.mqtt.allow_config_push),
        }
        changed = [k for k, (a, b) in kept.items() if a != b]
        if changed:
            raise CommandError("bad_request", f"config: {', '.join(changed)} can only be changed on the device")

        target = pushed_path(current.device.state_dir)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        previous = target.read_bytes() if target.is_file() else None
        previous_path = rt.reloader.path
        write_durable(target, text.encode())
        os.chmod(target, 0o600)
        result = rt.reloader.reload("push", target)
        if result.ok:
            rt.reloader.path = target
            why = self._healthy(nc.mqtt.config_push_health_s)
            if why is None:
                log.info("config push applied and healthy")
                return {"applied": True, "restarted": result.restarted, "next_restart": result.next_restart}
        else:
            why = "; ".join(result.errors)
        # roll back to what ran before: the previous pushed file, or the device's own
        if previous is not None:
            write_durable(target, previous)
        else:
            target.unlink(missing_ok=True)
        back = rt.reloader.reload("rollback", previous_path)
        rt.reloader.path = previous_path
        log.error("config push rolled back (%s); rollback %s", why, "done" if back.ok else "FAILED")
        raise CommandError("rolled_back", f"the pushed config was rolled back: {why}")

    def _healthy(self, bound_s: float) -> str | None:
        """None once every service is alive and MQTT is connected again; else why not, after `bound_s`."""
        rt = self.runtime
        deadline = time.monotonic() + bound_s
        why = "not checked"
        while True:
            dead = rt.dead()
            bridge = rt.agent.mqtt
            if dead:
                why = f"service(s) stopped: {', '.join(dead)}"
            elif bridge is None:
                why = "MQTT is off in the pushed config: the fleet could not reach this booth any more"
            elif not bridge.connected:
                why = f"MQTT did not connect within {bound_s:g} s"
            else:
                return None
            if time.monotonic() >= deadline:
                return why
            time.sleep(0.2)
