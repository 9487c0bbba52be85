"""The booth's state as `edge-agent status`, `GET /api/state` and MQTT `B/state` show it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.jobs.model import ACTIVE_STATES, JobState

if TYPE_CHECKING:
    from agent.core import Agent


def booth_state(agent: Agent) -> dict[str, Any]:
    store = agent.store
    current = store.latest(ACTIVE_STATES) or store.latest((JobState.CAPTURED,))
    err = store.last_error_info()
    offline = agent.scheduler.offline
    cfg = agent.config
    return {
        "mode": agent.mode,
        "detail": agent.mode_detail,
        "queue": store.counts(),
        "current_job": current.id if current else None,
        "last_error": err["error"] if err else None,
        "last_error_job": err["job_id"] if err else None,
        "last_error_at": round(err["at"], 3) if err else None,
        "version": __version__,
        "device": cfg.device.id,
        "profiles": [p.name for p in cfg.profiles],
        "platforms": {n: _platform_state(agent, n, offline) for n in agent.clients},
        "printer": printer_state(agent),
        "camera": agent.camera_state(),
        **_mqtt_state(agent.mqtt),
        **({"reload": agent.reload_info} if agent.reload_info else {}),
        "today": today(agent),
    }


def printer_state(agent: Agent) -> dict[str, Any]:
    from agent.printing.printer_state import OFF

    if not agent.config.printer.enabled:
        return OFF.as_dict()
    service = agent.printer
    if service is None:
        return {"state": "unavailable", "detail": "the print service is not running"}
    return dict(service.state())


def _platform_state(agent: Agent, name: str, offline: Any) -> str:
    """online | offline | key refused (an auth alarm: every job there fails until the key is fixed and reloaded)."""
    if name in agent.modes.alarms:
        return "key refused"
    return "offline" if name in offline else "online"


_TODAY_CACHE_S = 30.0  # the state is asked for at every job event: the day's numbers are fresh enough at 30 s


def today(agent: Agent) -> dict[str, Any] | None:
    """Today's captures, results, failures, prints and median time to result (agent/stats.py), cached."""
    import time

    from agent import stats

    cached = getattr(agent, "_today", None)
    if cached is not None and time.monotonic() - cached[0] < _TODAY_CACHE_S:
        return cached[1]
    try:
        t = stats.report(agent.store.path, days=1)["total"]
        value = {k: t[k] for k in ("captures", "done", "failed", "prints", "median_s")}
    except Exception:  # the numbers are a nicety: never let them break the state
        value = None
    agent._today = (time.monotonic(), value)  # type: ignore[attr-defined]
    return value


def _mqtt_state(bridge: Any) -> dict[str, Any]:
    if bridge is None:
        return {}
    out: dict[str, Any] = {"mqtt": "connected" if bridge.connected else "disconnected"}
    problem = getattr(bridge, "problem", None)
    if problem:
        out["mqtt_problem"] = problem  # e.g. another booth with the same device.id
    return out
