"""`edge-agent queue list | show | retry | cancel | purge`: the technician's view of the durable queue. Works with
the daemon running or stopped (the store is SQLite in WAL mode; the daemon notices changes made here)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.cli.common import EXIT_OK, EXIT_USAGE, CliError, age, load, open_store, print_json, resolve_job
from agent.config import LoadedConfig
from agent.jobs.lifecycle import Lifecycle
from agent.jobs.model import JobState

if TYPE_CHECKING:
    from agent.jobs.store import JobStore
    from agent.platforms.base import PlatformClient

_Action = Callable[[argparse.Namespace, LoadedConfig, "JobStore"], int]


def cmd_queue(args: argparse.Namespace) -> int:
    loaded = load(args)
    db = loaded.config.device.state_dir / "jobs.db"
    if args.queue_cmd == "list" and not db.exists():
        print("[]" if args.json else f"no jobs (no queue at {db} yet)")
        return EXIT_OK
    store = open_store(loaded)
    try:
        return _ACTIONS[args.queue_cmd](args, loaded, store)
    finally:
        store.close()


def _list(args: argparse.Namespace, loaded: LoadedConfig, store: JobStore) -> int:
    states = None
    if args.state:
        try:
            states = [JobState(s) for s in args.state.split(",")]
        except ValueError:
            raise CliError(
                f"unknown state in {args.state!r}; states: {', '.join(s.value for s in JobState)}", EXIT_USAGE
            ) from None
    jobs = store.list(states, limit=args.limit)
    if args.json:
        print_json([j.public() for j in jobs])
        return EXIT_OK
    if not jobs:
        print("no jobs")
        return EXIT_OK
    print(f"{'ID':<36}  {'STATE':<11} {'PROFILE':<12} {'SOURCE':<8} {'AGE':>5} {'TRY':>3}  NOTE")
    for j in jobs:
        note = j.error or (f"task {j.remote_task_id}" if j.remote_task_id else "")
        if not j.state.final and j.next_attempt_at > time.time() + 1 and j.state == JobState.CAPTURED:
            note = f"retry in {j.next_attempt_at - time.time():.0f}s: {note}"
        print(
            f"{j.id:<36}  {j.state.value:<11} {j.profile[:12]:<12} {j.source:<8} {age(j.created_at):>5} "
            f"{j.attempts:>3}  {note[:80]}"
        )
    return EXIT_OK


def _show(args: argparse.Namespace, loaded: LoadedConfig, store: JobStore) -> int:
    job = resolve_job(store, args.id)
    if args.json:
        print_json(job.public())
        return EXIT_OK
    d = job.public()
    for k in (
        "id",
        "state",
        "profile",
        "source",
        "platform",
        "remote_task_id",
        "attempts",
        "resubmits",
        "progress",
        "error",
        "result_dir",
    ):
        print(f"{k:<15} {d.get(k) if d.get(k) is not None else '-'}")
    print(f"{'created':<15} {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(job.created_at))}")
    for o in job.outputs:
        print(f"{'output':<15} {o.type} {o.path}")
    print("history:")
    for h in job.history:
        ts = time.strftime("%H:%M:%S", time.localtime(h["ts"]))
        print(f"  {ts} {h['state']:<11} {h.get('note', '')}")
    return EXIT_OK


def _lifecycle(loaded: LoadedConfig, store: JobStore) -> Lifecycle:
    """The same lifecycle the daemon uses (job.json at every move, reasons masked); the daemon announces what
    changed here when it sees the store change."""
    from agent.redact import Redactor
    from agent.results import ResultLayout

    layout = ResultLayout(loaded.config.device.results_dir)
    return Lifecycle(store, layout, redact=Redactor(loaded.secrets.all_values()).mask)


def _retry(args: argparse.Namespace, loaded: LoadedConfig, store: JobStore) -> int:
    lc = _lifecycle(loaded, store)
    if args.failed == bool(args.id):
        raise CliError("say which: a job id, or --failed for every failed and expired job", EXIT_USAGE)
    note = "retried by a technician (edge-agent queue retry)"
    if args.failed:
        jobs = store.list((JobState.FAILED, JobState.EXPIRED), limit=1_000_000, newest_first=False)
        done = [j for j in jobs if lc.retry(j.id, note=note) is not None]
        print(
            f"{len(done)} job(s) queued again"
            + (f"; {len(jobs) - len(done)} without their photo on disk" if len(done) < len(jobs) else "")
        )
        return EXIT_OK
    job = resolve_job(store, args.id)
    j = lc.retry(job.id, note=note)
    if j is None:
        raise CliError(
            f"job {job.id} is {job.state.value}; only failed, expired or cancelled jobs with their "
            "photo on disk can be retried"
        )
    print(f"{j.id} queued again")
    return EXIT_OK


def _cancel(args: argparse.Namespace, loaded: LoadedConfig, store: JobStore) -> int:
    from agent.jobs.actions import cancel_job
    from agent.platforms import make_client

    job = resolve_job(store, args.id)
    clients: dict[str, PlatformClient] = {}
    cfg = loaded.config
    name = job.platform or ""
    if name in cfg.platforms:  # where its task lives, to cancel that too
        clients[name] = make_client(name, cfg.platforms[name], loaded.secrets.platform_keys.get(name))
    try:
        j = cancel_job(
            _lifecycle(loaded, store), job.id, clients, note="cancelled by a technician (edge-agent queue cancel)"
        )
    finally:
        for c in clients.values():
            c.close()
    if j is None:
        raise CliError(f"job {job.id} is already {job.state.value}")
    print(
        f"{j.id} cancelled"
        + (f" (remote task {j.remote_task_id} cancelled too where possible)" if j.remote_task_id else "")
    )
    return EXIT_OK


def _purge(args: argparse.Namespace, loaded: LoadedConfig, store: JobStore) -> int:
    from agent import retention

    if not args.failed and not args.done:
        raise CliError("say what to purge: --failed and/or --done (with --older-than DAYS)", EXIT_USAGE)
    states = [JobState.FAILED, JobState.EXPIRED, JobState.CANCELLED] if args.failed else []
    states += [JobState.DONE] if args.done else []
    jobs = store.list(states, limit=10_000_000)
    if args.older_than is not None:
        jobs = retention.select(jobs, now=time.time(), keep_days=args.older_than)
    if not args.yes:
        for j in jobs[:50]:
            print(f"{j.id}  {j.state.value:<9}  {age(j.created_at):>5}  {(j.error or '')[:70]}")
        if len(jobs) > 50:
            print(f"... and {len(jobs) - 50} more")
        hint = " (`queue retry --failed` sends them again instead)" if args.failed else ""
        print(f"{len(jobs)} job(s) and their photos and results would be deleted; add --yes to delete them{hint}")
        return EXIT_OK
    gone = retention.purge(_lifecycle(loaded, store), jobs, loaded.config.device.results_dir)  # retried ones stay
    print(f"purged {len(gone)} job(s) and their photos and results")
    return EXIT_OK


_ACTIONS: dict[str, _Action] = {"list": _list, "show": _show, "retry": _retry, "cancel": _cancel, "purge": _purge}
