"""`edge-agent print JOB [--copies N] [--wait]` and `edge-agent printer status | reset-count`.

`print` asks the running daemon (its print service sends and follows the print); `printer status` asks CUPS and
the store directly, so it works with the daemon stopped; `reset-count` starts a new event for
[printer] max_prints_per_event (the daemon counts from then on at once: the count is read from the store).
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from agent.cli.common import EXIT_FAILED, EXIT_OK, CliError, api_client, load, open_store, print_json, resolve_job

if TYPE_CHECKING:  # imported where used: the parser (built for every command) needs none of it
    from agent.printing.store import PrintStore

WAIT_STEP_S = 0.5


def add_print_commands(add: Any, common: argparse.ArgumentParser, fmt: Any) -> None:
    """Wired from agent/cli/__init__.py: `add(name, help, func)` makes a sub-command."""
    s = add("print", "print a done job's result on the booth's printer (asks the running daemon)", cmd_print)
    s.add_argument("job", help="a job id, or its first 4+ characters")
    s.add_argument("--copies", type=int, help="copies (default: [printer] copies)")
    s.add_argument("--wait", action="store_true", help="wait until it is printed; exit 1 if it fails")
    s.add_argument("--timeout", type=float, default=300.0, help="with --wait: give up after this many seconds")
    s = add("printer", "the printer: its state, and the per-event print count", cmd_printer)
    ps = s.add_subparsers(dest="printer_cmd", required=True, metavar="ACTION")
    p = ps.add_parser(
        "status", parents=[common], help="the printer's state, the event count, recent prints", formatter_class=fmt
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    ps.add_parser(
        "reset-count",
        parents=[common],
        help="start a new event: max_prints_per_event counts from now",
        formatter_class=fmt,
    )


def _prints(loaded: Any) -> PrintStore:
    from agent.printing.store import PrintStore

    store = open_store(loaded)  # the same database: says clearly when there is none yet
    store.close()
    return PrintStore(loaded.config.device.state_dir / "jobs.db")


def cmd_print(args: argparse.Namespace) -> int:
    loaded = load(args)
    client, _ = api_client(loaded)  # first: with the daemon stopped, say so (not "no job")
    store = open_store(loaded)
    try:
        job = resolve_job(store, args.job)
    finally:
        store.close()
    import httpx

    body: dict[str, Any] = {"source": "cli"}
    if args.copies is not None:
        body["copies"] = args.copies
    try:
        with client:
            printer = (client.get("/api/state").json().get("printer") or {}) if not args.wait else {}
            r = client.post(f"/api/jobs/{job.id}/print", json=body, headers={"X-Edge-Agent": "1"})
    except httpx.HTTPError as e:
        raise CliError(f"the daemon did not answer: {e}") from None
    data = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code >= 400:
        err = data.get("error") or {}
        raise CliError(err.get("message") or f"HTTP {r.status_code}")
    n = data.get("copies", 1)
    print(f"print {data['print_id'][:8]} {data['state']}: job {job.id[:8]}, {n} cop{'y' if n == 1 else 'ies'}")
    if printer.get("state") not in (None, "ok"):
        print(
            f"the printer is {printer['state']}"
            + (f" ({printer['detail']})" if printer.get("detail") else "")
            + ": the print is held until it can print"
        )
    if not args.wait:
        return EXIT_OK
    prints = _prints(loaded)
    deadline = time.monotonic() + args.timeout
    try:
        while time.monotonic() < deadline:
            rec = prints.get(data["print_id"])
            if rec is not None and rec.state.final:
                print(f"print {rec.id[:8]} {rec.state.value}" + (f": {rec.detail}" if rec.detail else ""))
                return EXIT_OK if rec.state.value == "printed" else EXIT_FAILED
            time.sleep(WAIT_STEP_S)
    finally:
        prints.close()
    raise CliError(f"not printed within {args.timeout:.0f} s (see `edge-agent printer status`)")


def cmd_printer(args: argparse.Namespace) -> int:
    from agent.printing.printer_state import OFF, look

    loaded = load(args)
    cfg = loaded.config.printer
    prints = _prints(loaded)
    try:
        if args.printer_cmd == "reset-count":
            before = prints.sheets(since=prints.event_started_at())
            prints.reset_event()
            print(f"event count reset ({before} prints counted before)")
            return EXIT_OK
        view = look(cfg.queue) if cfg.enabled else OFF
        started = prints.event_started_at()
        state = view.as_dict(
            queue=cfg.queue,
            media=cfg.media or "queue default",
            prints_this_event=prints.sheets(since=started),
            max_prints_per_event=cfg.max_prints_per_event or None,
            prints=prints.counts(),
            recent=[p.public() for p in prints.recent(10)],
        )
    finally:
        prints.close()
    if args.json:
        print_json(state)
        return EXIT_OK
    limit = f" of {cfg.max_prints_per_event}" if cfg.max_prints_per_event else ""
    print(f"printer   {state['state']}: {state['detail']}  (queue {cfg.queue}, paper {state['media']})")
    print(
        f"event     {state['prints_this_event']}{limit} prints since "
        + (time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if started else "the start")
    )
    print("prints    " + (", ".join(f"{k} {v}" for k, v in sorted(state["prints"].items())) or "none"))
    for p in state["recent"]:
        when = time.strftime("%H:%M:%S", time.localtime(p["created_at"]))
        detail = f"  {p['detail']}" if p.get("detail") else ""
        print(f"  {when}  {p['print_id'][:8]}  job {p['job_id'][:8]}  x{p['copies']}  {p['state']}{detail}")
    return EXIT_OK if view.usable or not cfg.enabled else EXIT_FAILED
