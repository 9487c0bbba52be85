"""`edge-agent stats`: the booth owner's numbers (agent/stats.py), read from the queue (the daemon may be stopped)."""

from __future__ import annotations

import argparse
from typing import Any

from agent.cli.common import EXIT_OK, EXIT_USAGE, CliError, load, print_json


def _line(label: str, b: dict[str, Any]) -> str:
    secs = lambda v: f"{v:.1f} s" if v is not None else "-"
    causes = ", ".join(f"{k} {v}" for k, v in b["failed_by_cause"].items()) or "-"
    return (
        f"{label:<22} {b['captures']:>8} {b['done']:>5} {b['failed']:>6} {b['prints']:>6} "
        f"{secs(b['median_s']):>8} {secs(b['p95_s']):>8}  {causes}"
    )


def cmd_stats(args: argparse.Namespace) -> int:
    from agent import stats

    loaded = load(args)
    db = loaded.config.device.state_dir / "jobs.db"
    if args.start_event is not None:
        name = args.start_event.strip()
        if not name or len(name) > 80:
            raise CliError("an event needs a name of 1 to 80 characters", EXIT_USAGE)
        db.parent.mkdir(parents=True, exist_ok=True)
        stats.start_event(db, name)
        print(f"event {name!r} started: statistics and per-event counts from now on belong to it")
        return EXIT_OK
    if not db.exists():
        print("{}" if args.json else f"no statistics yet (no queue at {db})")
        return EXIT_OK
    r = stats.report(db, args.days)
    if args.json:
        print_json(r)
        return EXIT_OK
    print(f"{'':<22} {'captures':>8} {'done':>5} {'failed':>6} {'prints':>6} {'median':>8} {'p95':>8}  failed by cause")
    for day, b in r["days"].items():
        print(_line(day, b))
    print(_line(f"last {args.days} day(s)", r["total"]))
    for ev, b in r["events"].items():
        print(_line(f"event {ev}"[:22], b))
    print("median and p95: time from the press to the result on disk, for delivered jobs")
    return EXIT_OK
