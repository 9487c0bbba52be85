"""`GET /status`: one read-only page for a technician (camera, platforms, queue, printer, disk, MQTT, last errors,
today's counts). Rendered on the server with no script, refreshed by the browser every few seconds; every value
is escaped, and error texts are the stored ones (secrets were masked before they were stored)."""

from __future__ import annotations

import datetime
import html
import time
from typing import Any

from agent.jobs.model import JobState
from agent.steps.capture import free_disk_mb

_REFRESH_S = 5


def _row(name: str, value: Any, ok: bool | None = None) -> str:
    cls = "" if ok is None else (' class="ok"' if ok else ' class="bad"')
    return f"<tr><th>{html.escape(name)}</th><td{cls}>{html.escape(str(value))}</td></tr>"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _part(name: str, value: Any) -> str:
    """A {state, detail} part of the state (camera, printer), or 'not reported' before that part exists."""
    if not isinstance(value, dict):
        return _row(name, "not reported")
    state = value.get("state", "?")
    detail = value.get("detail")
    # "off" is the operator's choice (e.g. [printer] enabled = false), not a fault: neither green nor red
    return _row(name, f"{state}" + (f" ({detail})" if detail else ""), None if state == "off" else state == "ok")


def render(agent: Any, usage: dict[str, int]) -> str:
    st = agent.state()
    cfg = agent.config
    rows = [
        _row("device", st.get("device")),
        _row("version", st.get("version")),
        _row("mode", st.get("mode") + (f" ({st['detail']})" if st.get("detail") else ""), st.get("mode") != "error"),
        _part("camera", st.get("camera")),
        _part("printer", st.get("printer") if cfg.printer.enabled or "printer" in st else {"state": "off"}),
        _row("MQTT", st.get("mqtt", "off") + (f" ({st['mqtt_problem']})" if st.get("mqtt_problem") else "")),
        _row(
            "HTTP",
            f"{_count(usage.get('connections', 0), 'connection')}, {_count(usage.get('event_streams', 0), 'event stream')}",
        ),
    ]
    for name, where in {"state": cfg.device.state_dir, "results": cfg.device.results_dir}.items():
        free = free_disk_mb(where)
        rows.append(_row(f"disk ({name})", f"{free:.0f} MB free in {where}", free >= cfg.queue.min_free_disk_mb))
    platforms = "".join(_row(n, s, s == "online") for n, s in sorted(st.get("platforms", {}).items()))
    queue = st.get("queue") or {}
    queue_rows = "".join(_row(s.value, queue.get(s.value, 0)) for s in JobState)
    midnight = datetime.datetime.combine(datetime.date.today(), datetime.time()).timestamp()
    today = agent.store.counts_created_since(midnight)
    today_rows = _row("captured", sum(today.values())) + "".join(
        _row(s, n) for s, n in sorted(today.items()) if s in ("done", "failed", "expired", "cancelled")
    )
    errors = agent.store.list([JobState.FAILED, JobState.EXPIRED], limit=8)
    error_rows = (
        "".join(
            f"<tr><th>{html.escape(time.strftime('%H:%M:%S', time.localtime(j.updated_at)))}</th>"
            f"<td>{html.escape(j.id[:8])} {html.escape(j.profile)}: {html.escape(j.error or j.state.value)}</td></tr>"
            for j in errors
        )
        or "<tr><td>none</td></tr>"
    )
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{_REFRESH_S}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edge-agent status: {html.escape(str(st.get("device")))}</title>
<link rel="icon" href="/kiosk/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/kiosk/status.css"></head>
<body><h1>edge-agent status <small>{html.escape(now)}</small></h1>
<div class="grid">
<section><h2>Booth</h2><table>{"".join(rows)}</table></section>
<section><h2>Platforms</h2><table>{platforms or "<tr><td>none</td></tr>"}</table></section>
<section><h2>Queue</h2><table>{queue_rows}</table></section>
<section><h2>Today</h2><table>{today_rows}</table></section>
<section class="wide"><h2>Last errors</h2><table>{error_rows}</table></section>
</div><p class="note">Read-only. Refreshes every {_REFRESH_S} s.</p></body></html>
"""
