"""`edge-agent run`: the core plus every input and output the config asks for, until SIGTERM/SIGINT."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

from agent import __version__
from agent.config import LoadedConfig
from agent.core import Agent
from agent.httpapi import HttpApi
from agent.durable import write_durable

log = logging.getLogger(__name__)
DAEMON_FILE = "daemon.json"
LOCK_FILE = "daemon.lock"


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) about readiness; a no-op outside systemd."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(message.encode())
    except OSError as e:
        log.debug("sd_notify failed: %s", e)


def daemon_info(state_dir: Path) -> dict | None:
    """Where the running daemon serves its API (written at start, removed at a clean stop), if it is alive."""
    try:
        info = json.loads((state_dir / DAEMON_FILE).read_text())
        os.kill(int(info["pid"]), 0)
        return info
    except (OSError, ValueError, KeyError, TypeError):
        return None


class CannotStart(Exception):
    pass


def _single_instance(state_dir: Path):
    """One daemon per state_dir: a second one would recover (and re-submit) the first one's jobs."""
    state_dir.mkdir(parents=True, exist_ok=True)
    f = open(state_dir / LOCK_FILE, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        info = daemon_info(state_dir)
        who = f" (pid {info['pid']}, API {info['url']})" if info else ""
        raise CannotStart(f"another edge-agent daemon is already running with state_dir {state_dir}{who}") from None
    return f  # keep it open: the lock lives as long as this process


def run(loaded: LoadedConfig) -> int:
    cfg = loaded.config
    for w in loaded.warnings:
        log.warning("config: %s", w)
    lock = _single_instance(cfg.device.state_dir)
    agent = Agent(loaded)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        api = HttpApi(agent)
    except OSError as e:
        agent.stop()
        lock.close()
        raise CannotStart(f"cannot listen on {cfg.http.listen} ([http] listen): {e.strerror}") from None
    agent.start()
    api.start()
    extras: list = []
    if cfg.mqtt.enabled:
        from agent.mqtt import MqttBridge

        bridge = MqttBridge(agent)
        bridge.start()
        agent.mqtt = bridge
        extras.append(bridge)
    if cfg.buttons or any(v is not None for v in cfg.indicators.model_dump().values()):
        extras += _start_gpio(agent)

    info = {"pid": os.getpid(), "url": api.url, "version": __version__, "started_at": time.time()}
    write_durable(cfg.device.state_dir / DAEMON_FILE, json.dumps(info).encode())
    log.info("edge-agent %s running: device %s, API %s, %d profile(s)", __version__, cfg.device.id, api.url,
             len(cfg.profiles))
    sd_notify("READY=1\nSTATUS=running")
    watchdog_s = int(os.environ.get("WATCHDOG_USEC", "0")) / 1e6 if os.environ.get("WATCHDOG_PID") in (
        None, str(os.getpid())) else 0.0
    tick = min(1.0, watchdog_s / 3) if watchdog_s else 1.0
    try:
        while not stop.wait(tick):
            if watchdog_s and agent.worker.alive and api.alive:
                sd_notify("WATCHDOG=1")  # a hung worker or API stops the pings and systemd restarts us
    finally:
        sd_notify("STOPPING=1")
        for x in reversed(extras):
            try:
                x.close() if hasattr(x, "close") else x.stop()
            except Exception:
                log.exception("stopping %r failed", x)
        api.stop()
        agent.stop()
        (cfg.device.state_dir / DAEMON_FILE).unlink(missing_ok=True)
        lock.close()
        log.info("stopped")
    return 0


def _start_gpio(agent: Agent) -> list:
    started: list = []
    cfg = agent.config
    try:
        from agent.devices import ButtonService, LedService
        from hardware.gpio import GpioUnavailable
    except ImportError as e:  # pragma: no cover - gpiozero is a dependency
        log.error("GPIO support missing: %s", e)
        return started
    services = [ButtonService(agent)] if cfg.buttons else []
    for service in [*services, LedService(agent)]:
        try:
            service.start()
            started.append(service)
        except GpioUnavailable as e:
            log.error("%s", e)
    return started
