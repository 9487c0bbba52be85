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
from typing import Any

from agent import __version__
from agent.config import LoadedConfig
from agent.durable import write_durable
from agent.memory import release_owed_memory
from agent.runtime import CannotStart, Runtime

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


STATUS_EVERY_S = 5.0


def status_text(agent: Any) -> str:
    """One line for systemd's STATUS: mode, what waits, the camera and printer when they are not fine."""
    try:
        st = agent.state()
    except Exception:  # the store is busy or closing: say nothing new
        return "running"
    waiting = sum(
        n for s, n in (st.get("queue") or {}).items() if s in ("captured", "submitting", "submitted", "downloading")
    )
    parts = [str(st.get("mode")) + (f" ({st['detail']})" if st.get("detail") else ""), f"{waiting} job(s) in work"]
    for part in ("camera", "printer"):
        v = st.get(part) or {}
        if v.get("state") not in (None, "ok", "off"):
            parts.append(f"{part} {v['state']}")
    return "; ".join(parts)[:200]


def run(loaded: LoadedConfig) -> int:
    cfg = loaded.config
    for w in loaded.warnings:
        log.warning("config: %s", w)
    lock = _single_instance(cfg.device.state_dir)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    reload_asked = threading.Event()

    def on_hup(_signum: int, _frame: object) -> None:
        reload_asked.set()  # the reload runs on the main loop, not inside the signal handler

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hup)
    try:
        rt = Runtime(loaded)
    except BaseException:
        lock.close()
        raise
    try:
        rt.start()
    except CannotStart:
        rt.stop()
        lock.close()
        raise
    api_url = rt.api.url
    info = {"pid": os.getpid(), "url": api_url, "version": __version__, "started_at": time.time()}
    write_durable(cfg.device.state_dir / DAEMON_FILE, json.dumps(info).encode())
    log.info(
        "edge-agent %s running: device %s, API %s, %d profile(s)",
        __version__,
        cfg.device.id,
        api_url,
        len(cfg.profiles),
    )
    sd_notify("READY=1\nSTATUS=running")
    watchdog_s = (
        int(os.environ.get("WATCHDOG_USEC", "0")) / 1e6
        if os.environ.get("WATCHDOG_PID") in (None, str(os.getpid()))
        else 0.0
    )
    tick = min(1.0, watchdog_s / 3) if watchdog_s else 1.0
    reported: list[str] = []
    status_line, status_at = "", 0.0
    try:
        while not stop.wait(tick):
            release_owed_memory()  # the heap pages the last jobs of a burst freed
            if time.monotonic() - status_at >= STATUS_EVERY_S:  # `systemctl status` shows how the booth is
                status_at = time.monotonic()
                line = status_text(rt.agent)
                if line != status_line:
                    status_line = line
                    sd_notify(f"STATUS={line}")
            if reload_asked.is_set():
                reload_asked.clear()
                sd_notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
                result = rt.reload("signal")
                sd_notify(f"READY=1\nSTATUS={result.summary()[:200]}")
            dead = rt.dead()
            if dead != reported:  # say it once: systemd restarts us when the pings stop
                reported = dead
                if dead:
                    log.error("service(s) stopped on their own: %s; the watchdog is no longer fed", ", ".join(dead))
            if watchdog_s and not dead:
                sd_notify("WATCHDOG=1")  # a hung or dead service stops the pings and systemd restarts us
    finally:
        sd_notify("STOPPING=1")
        rt.stop()
        (cfg.device.state_dir / DAEMON_FILE).unlink(missing_ok=True)
        lock.close()
        log.info("stopped")
    return 0
