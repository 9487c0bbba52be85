"""`edge-agent status`: the daemon's own state when it runs, else what the store says."""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx

from agent import __version__
from agent.cli.common import EXIT_OK, age, api_client, daemon_url, load, open_store, print_json


def _printer_now(loaded: Any) -> dict[str, Any]:
    from agent.printing.printer_state import OFF, look

    cfg = loaded.config.printer
    view = look(cfg.queue) if cfg.enabled else OFF
    return {"state": view.state, "detail": view.detail}


def cmd_status(args: argparse.Namespace) -> int:
    loaded = load(args)
    url = daemon_url(loaded)
    state: dict[str, Any] | None = None
    if url:
        try:
            client, _ = api_client(loaded)
            with client:
                state = client.get("/api/state").json()
            state["daemon"] = "running"
        except (httpx.HTTPError, ValueError):
            state = None
    if state is None:
        db = loaded.config.device.state_dir / "jobs.db"
        counts = {}
        err = None
        if db.exists():
            store = open_store(loaded)
            counts, err = store.counts(), store.last_error_info()
            store.close()
        state = {
            "daemon": "stopped",
            "mode": "stopped",
            "queue": counts,
            "last_error": err["error"] if err else None,
            "last_error_job": err["job_id"] if err else None,
            "last_error_at": err["at"] if err else None,
            "version": __version__,
            "device": loaded.config.device.id,
            # nothing holds them now: say so (doctor tries the camera), and ask CUPS itself about the printer
            "camera": {"state": "stopped", "detail": "the daemon is not running; `edge-agent doctor` tries the camera"},
            "printer": _printer_now(loaded),
        }
    if args.json:
        print_json(state)
        return EXIT_OK
    print(f"device    {state.get('device')}  (edge-agent {state.get('version')})")
    print(f"daemon    {state['daemon']}" + (f" at {url}" if state["daemon"] == "running" else ""))
    print(f"mode      {state['mode']}" + (f" ({state['detail']})" if state.get("detail") else ""))
    q = state.get("queue") or {}
    print("queue     " + (", ".join(f"{k} {v}" for k, v in sorted(q.items())) or "empty"))
    if state.get("platforms"):
        print("platforms " + ", ".join(f"{k} {v}" for k, v in state["platforms"].items()))
    if state.get("camera"):
        cam = state["camera"]
        print(f"camera    {cam['state']}" + (f" ({cam['detail']})" if cam.get("detail") else ""))
    if state.get("printer"):
        pr = state["printer"]
        print(f"printer   {pr['state']}" + (f" ({pr['detail']})" if pr.get("detail") else ""))
    if state.get("today"):
        t = state["today"]
        median = f", median {t['median_s']:.0f} s to a result" if t.get("median_s") is not None else ""
        print(
            f"today     {t['captures']} photos, {t['done']} results, {t['failed']} failed, {t['prints']} prints{median}"
        )
    if state.get("mqtt"):
        problem = f" ({state['mqtt_problem']})" if state.get("mqtt_problem") else ""
        print(f"mqtt      {state['mqtt']}{problem}")
    if state.get("last_error"):
        print(
            f"last error {state['last_error']}\n           (job {str(state.get('last_error_job'))[:8]}, "
            f"{age(state.get('last_error_at') or time.time())} ago)"
        )
    else:
        print("last error -")
    return EXIT_OK
