"""The `edge-agent` command. Exit codes: 0 success; 1 the work failed; 2 bad usage or invalid config."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import httpx

from agent import __version__
from agent.config import ConfigError, LoadedConfig, config_path_from_env, load_config
from agent.jobs.model import FINAL_STATES, Job, JobState

log = logging.getLogger("edge-agent")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------- helpers


def _load(args: argparse.Namespace) -> LoadedConfig:
    path = config_path_from_env(getattr(args, "config", None))
    try:
        return load_config(path)
    except ConfigError as e:
        for line in e.lines():
            print(line, file=sys.stderr)
        raise CliError("", EXIT_USAGE) from None


def _setup_logging(args: argparse.Namespace, loaded: LoadedConfig | None = None, default: str = "INFO") -> None:
    from agent.logs import setup_logging

    level = "DEBUG" if getattr(args, "verbose", False) else default
    setup_logging(level, loaded.secrets.all_values() if loaded else ())


def _make_agent(loaded: LoadedConfig):
    """The Agent, or a clear CliError when its folders or its store cannot be used."""
    from agent.core import Agent
    from agent.jobs.store import StoreError

    try:
        return Agent(loaded)
    except StoreError as e:
        raise CliError(str(e)) from None
    except OSError as e:
        raise CliError(f"cannot use {e.filename or 'the state folders'}: {e.strerror} (check [device] state_dir "
                       "and output_dir, and their owner)") from None


def _store(loaded: LoadedConfig):
    from agent.jobs.store import JobStore, StoreError

    db = loaded.config.device.state_dir / "jobs.db"
    if not db.exists():
        raise CliError(f"no job store at {db} (the agent has not run with this config yet)")
    try:
        return JobStore(db)
    except StoreError as e:
        raise CliError(str(e)) from None


def _daemon_url(loaded: LoadedConfig) -> str | None:
    from agent.daemon import daemon_info

    info = daemon_info(loaded.config.device.state_dir)
    return info["url"] if info else None


def _api_client(loaded: LoadedConfig) -> tuple[httpx.Client, str]:
    url = _daemon_url(loaded)
    if url is None:
        raise CliError(f"the daemon is not running (no live {loaded.config.device.state_dir}/daemon.json); "
                       "start it with `edge-agent run` or `systemctl start edge-agent`")
    headers = {}
    if loaded.secrets.http_token is not None:
        headers["Authorization"] = f"Bearer {loaded.secrets.http_token.get_secret_value()}"
    return httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(35.0, connect=3.0)), url


def _resolve_job(store, ref: str) -> Job:
    ref = ref.strip().lower()
    job = store.get(ref)
    if job is not None:
        return job
    if len(ref) < 4:
        raise CliError(f"give at least 4 characters of the job id (got {ref!r})", EXIT_USAGE)
    matches = store.find(ref)
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise CliError(f"{ref!r} matches {len(matches)} jobs; give more characters")
    raise CliError(f"no job {ref!r}")


def _age(ts: float) -> str:
    d = max(0, time.time() - ts)
    if d < 90:
        return f"{d:.0f}s"
    if d < 5400:
        return f"{d / 60:.0f}m"
    if d < 172800:
        return f"{d / 3600:.0f}h"
    return f"{d / 86400:.0f}d"


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True))


# ---------------------------------------------------------------------------------------------- commands


def cmd_check_config(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else config_path_from_env(getattr(args, "config", None))
    try:
        loaded = load_config(path)
    except ConfigError as e:
        for line in e.lines():
            print(line, file=sys.stderr)
        return EXIT_USAGE
    for w in loaded.warnings:
        print(f"{path}: warning: {w}", file=sys.stderr)
    c = loaded.config
    print(f"{path}: OK ({len(c.profiles)} profile(s), {len(c.platforms)} platform(s), camera {c.camera.driver})")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    loaded = _load(args)
    _setup_logging(args, loaded)
    from agent.daemon import CannotStart, run
    from agent.jobs.store import StoreError

    try:
        return run(loaded)
    except StoreError as e:
        raise CliError(str(e)) from None
    except CannotStart as e:
        raise CliError(str(e)) from None
    except OSError as e:
        raise CliError(f"cannot start: {e}") from None


def cmd_once(args: argparse.Namespace) -> int:
    loaded = _load(args)
    _setup_logging(args, loaded, default="ERROR")  # the outcome line says what happened
    from agent.commands import Command, CommandError

    if args.profile is not None:
        try:
            loaded.config.profile(args.profile)
        except KeyError:
            raise CliError(f"unknown profile {args.profile!r}", EXIT_USAGE) from None
    if not args.image and loaded.config.camera.driver in ("picamera2", "opencv") and _daemon_url(loaded):
        raise CliError("the running daemon holds the camera: use `edge-agent trigger --wait` (or `once --image "
                       "FILE`)")
    image = None
    if args.image:
        try:
            image = Path(args.image).read_bytes()
        except OSError as e:
            raise CliError(f"cannot read {args.image}: {e.strerror}", EXIT_USAGE) from None
        from agent.steps.capture import ensure_jpeg

        try:
            image = ensure_jpeg(image)  # checked before anything is queued
        except CommandError as e:
            raise CliError(f"{args.image}: {e.message}", EXIT_USAGE) from None
    agent = _make_agent(loaded)
    agent.start(recover=False, only_own_jobs=True)

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through agent.stop(): a submit on the wire finishes and is recorded

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    try:
        try:
            if image is not None:
                res = agent.capture_file(image, profile=args.profile)
            else:
                res = agent.request(Command("capture", "cli", profile=args.profile)).result()
        except CommandError as e:
            raise CliError(e.message) from None
        job_id = res["job_id"]
        agent.worker.own_jobs.add(job_id)
        agent.worker.wake()
        try:
            job = _follow(agent, job_id, live=sys.stderr.isatty() and not args.json, timeout=args.timeout)
        except KeyboardInterrupt:
            state = agent.store.get(job_id).state.value
            print(f"\ninterrupted: job {job_id} stays queued ({state}); the daemon delivers it, or "
                  f"`edge-agent queue cancel {job_id[:8]}` drops it", file=sys.stderr)
            raise
    finally:
        agent.stop()
    if not job.state.final:
        msg = (f"job {job.id} not finished after {args.timeout:.0f} s ({job.state.value}"
               + (f": {job.error}" if job.error else "") + "); it stays queued and the daemon will deliver it")
        if args.json:
            _print_json({"job_id": job.id, "state": job.state.value, "profile": job.profile, "error": job.error,
                         "result_dir": job.result_dir, "outputs": []})
        print(msg, file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        _print_json({"job_id": job.id, "state": job.state.value, "profile": job.profile, "error": job.error,
                     "result_dir": job.result_dir,
                     "outputs": [{"type": o.type, "path": o.path} for o in job.outputs]})
    elif job.state == JobState.DONE:
        for o in job.outputs:
            print(o.path)
    else:
        print(f"job {job.id} {job.state.value}: {job.error}", file=sys.stderr)
    return EXIT_OK if job.state == JobState.DONE else EXIT_FAILED


def _follow(agent, job_id: str, live: bool, timeout: float) -> Job:
    """Wait for the job to finish (or `timeout`), drawing a progress line on a terminal."""
    last = ""
    start = time.monotonic()
    while True:
        job = agent.store.get(job_id)
        if live:
            bar_n = int((job.progress or 0) / 5)
            line = (f"\r{job.state.value:<11} [{'#' * bar_n}{'.' * (20 - bar_n)}] "
                    f"{job.progress if job.progress is not None else '--':>3}% {time.monotonic() - start:5.1f}s")
            if job.error and not job.state.final:
                line += f"  waiting: {job.error[:60]}"
            if line != last:
                sys.stderr.write(line.ljust(100)[:100])
                sys.stderr.flush()
                last = line
        if job.state in FINAL_STATES or time.monotonic() - start > timeout:
            if live:
                sys.stderr.write("\n")
            return job
        agent.wait_for(job_id, timeout=0.2)


def cmd_trigger(args: argparse.Namespace) -> int:
    loaded = _load(args)
    client, _url = _api_client(loaded)
    with client:
        body: dict[str, Any] = {"source": "cli"}
        if args.profile:
            body["profile"] = args.profile
        try:
            r = client.post("/api/capture", json=body)
        except httpx.HTTPError as e:
            raise CliError(f"cannot reach the daemon: {e}") from None
        data = r.json()
        if r.status_code >= 400:
            err = data.get("error", {})
            usage = err.get("code") in ("bad_request", "not_found")
            raise CliError(f"refused: {err.get('message', r.text)}", EXIT_USAGE if usage else EXIT_FAILED)
        job_id = data["job_id"]
        print(job_id)
        if not args.wait:
            return EXIT_OK
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            try:
                job = client.get(f"/api/jobs/{job_id}").json()
            except httpx.HTTPError as e:
                raise CliError(f"lost the daemon while waiting: {e}") from None
            except KeyboardInterrupt:
                print(f"interrupted: job {job_id} goes on in the daemon", file=sys.stderr)
                raise
            if job["state"] in {s.value for s in FINAL_STATES}:
                if job["state"] == "done":
                    for o in job["outputs"]:
                        print(o.get("path") or o.get("url"))
                    return EXIT_OK
                print(f"job {job_id} {job['state']}: {job.get('error')}", file=sys.stderr)
                return EXIT_FAILED
            time.sleep(0.25)
        print(f"job {job_id} not finished after {args.timeout:.0f} s", file=sys.stderr)
        return EXIT_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    loaded = _load(args)
    url = _daemon_url(loaded)
    state: dict[str, Any] | None = None
    if url:
        try:
            client, _ = _api_client(loaded)
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
            store = _store(loaded)
            counts, err = store.counts(), store.last_error_info()
            store.close()
        state = {"daemon": "stopped", "mode": "stopped", "queue": counts,
                 "last_error": err["error"] if err else None, "last_error_job": err["job_id"] if err else None,
                 "last_error_at": err["at"] if err else None, "version": __version__,
                 "device": loaded.config.device.id}
    if args.json:
        _print_json(state)
        return EXIT_OK
    print(f"device    {state.get('device')}  (edge-agent {state.get('version')})")
    print(f"daemon    {state['daemon']}" + (f" at {url}" if state["daemon"] == "running" else ""))
    print(f"mode      {state['mode']}" + (f" ({state['detail']})" if state.get("detail") else ""))
    q = state.get("queue") or {}
    print("queue     " + (", ".join(f"{k} {v}" for k, v in sorted(q.items())) or "empty"))
    if state.get("platforms"):
        print("platforms " + ", ".join(f"{k} {v}" for k, v in state["platforms"].items()))
    if state.get("mqtt"):
        print(f"mqtt      {state['mqtt']}")
    if state.get("last_error"):
        print(f"last error {state['last_error']}\n           (job {str(state.get('last_error_job'))[:8]}, "
              f"{_age(state.get('last_error_at') or time.time())} ago)")
    else:
        print("last error -")
    return EXIT_OK


def cmd_queue(args: argparse.Namespace) -> int:
    loaded = _load(args)
    db = loaded.config.device.state_dir / "jobs.db"
    if args.queue_cmd == "list" and not db.exists():
        print("[]" if args.json else f"no jobs (no queue at {db} yet)")
        return EXIT_OK
    store = _store(loaded)
    try:
        return _QUEUE[args.queue_cmd](args, loaded, store)
    finally:
        store.close()


def _queue_list(args, loaded, store) -> int:
    states = None
    if args.state:
        try:
            states = [JobState(s) for s in args.state.split(",")]
        except ValueError:
            raise CliError(f"unknown state in {args.state!r}; states: {', '.join(s.value for s in JobState)}",
                           EXIT_USAGE) from None
    jobs = store.list(states, limit=args.limit)
    if args.json:
        _print_json([j.public() for j in jobs])
        return EXIT_OK
    if not jobs:
        print("no jobs")
        return EXIT_OK
    print(f"{'ID':<36}  {'STATE':<11} {'PROFILE':<12} {'SOURCE':<8} {'AGE':>5} {'TRY':>3}  NOTE")
    for j in jobs:
        note = j.error or (f"task {j.remote_task_id}" if j.remote_task_id else "")
        if not j.state.final and j.next_attempt_at > time.time() + 1 and j.state == JobState.CAPTURED:
            note = f"retry in {j.next_attempt_at - time.time():.0f}s: {note}"
        print(f"{j.id:<36}  {j.state.value:<11} {j.profile[:12]:<12} {j.source:<8} {_age(j.created_at):>5} "
              f"{j.attempts:>3}  {note[:80]}")
    return EXIT_OK


def _queue_show(args, loaded, store) -> int:
    job = _resolve_job(store, args.id)
    if args.json:
        _print_json(job.public())
        return EXIT_OK
    d = job.public()
    for k in ("id", "state", "profile", "source", "platform", "remote_task_id", "attempts", "resubmits", "progress",
              "error", "result_dir"):
        print(f"{k:<15} {d.get(k) if d.get(k) is not None else '-'}")
    print(f"{'created':<15} {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(job.created_at))}")
    for o in job.outputs:
        print(f"{'output':<15} {o.type} {o.path}")
    print("history:")
    for h in job.history:
        ts = time.strftime("%H:%M:%S", time.localtime(h["ts"]))
        print(f"  {ts} {h['state']:<11} {h.get('note', '')}")
    return EXIT_OK


def _queue_retry(args, loaded, store) -> int:
    from agent.core import retry_job

    if args.failed == bool(args.id):
        raise CliError("say which: a job id, or --failed for every failed and expired job", EXIT_USAGE)
    note = "retried by a technician (edge-agent queue retry)"
    if args.failed:
        jobs = store.list((JobState.FAILED, JobState.EXPIRED), limit=1_000_000, newest_first=False)
        done = [j for j in jobs if retry_job(store, j.id, note=note) is not None]
        print(f"{len(done)} job(s) queued again" + (f"; {len(jobs) - len(done)} without their photo on disk"
                                                     if len(done) < len(jobs) else ""))
        return EXIT_OK
    job = _resolve_job(store, args.id)
    j = retry_job(store, job.id, note=note)
    if j is None:
        raise CliError(f"job {job.id} is {job.state.value}; only failed, expired or cancelled jobs with their "
                       "photo on disk can be retried")
    print(f"{j.id} queued again")
    return EXIT_OK


def _queue_cancel(args, loaded, store) -> int:
    from agent.core import cancel_job
    from agent.platforms import make_client

    job = _resolve_job(store, args.id)
    clients = {}
    cfg = loaded.config
    try:
        name = cfg.profile(job.profile).platform
        clients[name] = make_client(name, cfg.platforms[name], loaded.secrets.platform_keys.get(name))
    except KeyError:
        pass
    try:
        j = cancel_job(store, job.id, clients, cfg, note="cancelled by a technician (edge-agent queue cancel)")
    finally:
        for c in clients.values():
            c.close()
    if j is None:
        raise CliError(f"job {job.id} is already {job.state.value}")
    from agent.results import ResultLayout

    ResultLayout(cfg.device.results_dir).write_job_json(j)
    print(f"{j.id} cancelled" + (f" (remote task {j.remote_task_id} cancelled too where possible)"
                                 if j.remote_task_id else ""))
    return EXIT_OK


def _queue_purge(args, loaded, store) -> int:
    if not args.failed:
        raise CliError("say what to purge: --failed", EXIT_USAGE)
    jobs = store.list((JobState.FAILED, JobState.EXPIRED, JobState.CANCELLED), limit=1_000_000)
    if not args.yes:
        for j in jobs[:50]:
            print(f"{j.id}  {j.state.value:<9}  {_age(j.created_at):>5}  {(j.error or '')[:70]}")
        if len(jobs) > 50:
            print(f"... and {len(jobs) - 50} more")
        print(f"{len(jobs)} job(s) and their photos would be deleted; add --yes to delete them "
              "(`queue retry --failed` sends them again instead)")
        return EXIT_OK
    final = (JobState.FAILED, JobState.EXPIRED, JobState.CANCELLED)
    gone = set(store.delete((j.id for j in jobs), only_states=final))  # a job retried meanwhile stays
    for j in jobs:
        if j.id in gone and j.result_dir and Path(j.result_dir).is_dir():
            shutil.rmtree(j.result_dir, ignore_errors=True)
    print(f"purged {len(gone)} failed/expired/cancelled job(s) and their files")
    return EXIT_OK


_QUEUE = {"list": _queue_list, "show": _queue_show, "retry": _queue_retry, "cancel": _queue_cancel,
          "purge": _queue_purge}


def cmd_doctor(args: argparse.Namespace) -> int:
    loaded = _load(args)
    _setup_logging(args, loaded, default="CRITICAL")
    from agent.doctor import FAIL, render, run_checks

    checks = run_checks(loaded)
    if args.json:
        _print_json([c.as_dict() for c in checks])
    else:
        render(checks)
    return EXIT_FAILED if any(c.status == FAIL for c in checks) else EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from agent.logs import setup_logging
    from agent.simulator import SimConfig, run_forever

    setup_logging("DEBUG" if args.verbose else "INFO")
    try:
        cfg = SimConfig(host=args.host, port=args.port, latency=args.latency, fail_rate=args.fail_rate,
                        seed=args.seed, api_keys=tuple(args.key or ()), quirks=frozenset(args.quirk or ()),
                        workers=args.workers)
    except (ValueError, TypeError) as e:
        raise CliError(str(e), EXIT_USAGE) from None
    try:
        run_forever(cfg)
    except OSError as e:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {e.strerror}") from None
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from agent.demo import run_demo

    _setup_logging(args, None, default="WARNING")
    return run_demo(count=args.count, out_dir=Path(args.dir), latency=args.latency, keep_serving=args.serve)


# ---------------------------------------------------------------------------------------------- parser


def _positive(v: str) -> float:
    x = float(v)
    if not x > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return x


def _count(v: str) -> int:
    n = int(v)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return n


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = argparse.ArgumentParser(prog="edge-agent", description="AI photo booth / AI camera / try-on kiosk agent")
    p.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: `-c` works before or after a sub-command (`queue -c F list` and `queue list -c F`)
    for parser in (p, common):
        parser.add_argument("-c", "--config", default=argparse.SUPPRESS,
                            help="config file (default: $EDGE_AGENT_CONFIG, else /etc/edge-agent/config.toml)")
        parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(name: str, help_: str, func, parents=(common,)) -> argparse.ArgumentParser:
        s = sub.add_parser(name, parents=list(parents), help=help_, description=help_, formatter_class=fmt)
        s.set_defaults(func=func)
        return s

    add("run", "the daemon: triggers, queue worker, HTTP API, MQTT", cmd_run)

    s = add("once", "one job in the foreground, with live progress; prints the output paths", cmd_once)
    s.add_argument("--profile", help="the profile to use (default: the first in the config)")
    s.add_argument("--image", help="use this photo instead of the camera")
    s.add_argument("--json", action="store_true", help="print one JSON object instead of paths")
    s.add_argument("--timeout", type=_positive, default=300.0,
                   help="give up waiting after this many seconds (the photo stays queued for the daemon)")

    s = add("trigger", "ask the running daemon to start a job; prints its id", cmd_trigger)
    s.add_argument("--profile", help="the profile to use (default: the first in the config)")
    s.add_argument("--wait", action="store_true", help="wait for the end; exit 0 when done, 1 otherwise")
    s.add_argument("--timeout", type=_positive, default=600.0, help="with --wait: give up after this many seconds")

    s = add("status", "daemon state, queue depth by state, last error", cmd_status)
    s.add_argument("--json", action="store_true", help="print one JSON object")

    s = add("queue", "the durable queue (works with the daemon running or stopped)", cmd_queue)
    qs = s.add_subparsers(dest="queue_cmd", required=True, metavar="ACTION")

    def qadd(name: str, help_: str) -> argparse.ArgumentParser:
        return qs.add_parser(name, parents=[common], help=help_, description=help_, formatter_class=fmt)

    q = qadd("list", "jobs, newest first")
    q.add_argument("--state", help="only these states, comma-separated (e.g. failed,expired)")
    q.add_argument("--limit", type=_count, default=50, help="at most this many jobs")
    q.add_argument("--json", action="store_true", help="print JSON")
    q = qadd("show", "one job with its history")
    q.add_argument("id", help="a job id, or its first 4+ characters")
    q.add_argument("--json", action="store_true", help="print JSON")
    q = qadd("retry", "submit failed, expired or cancelled jobs again")
    q.add_argument("id", nargs="?", help="a job id, or its first 4+ characters")
    q.add_argument("--failed", action="store_true", help="every failed and expired job (e.g. after fixing a key)")
    q = qadd("cancel", "cancel a job (and its remote task where the platform can)")
    q.add_argument("id", help="a job id, or its first 4+ characters")
    q = qadd("purge", "delete given-up jobs and their files (photos included)")
    q.add_argument("--failed", action="store_true", help="failed, expired and cancelled jobs")
    q.add_argument("--yes", action="store_true", help="really delete (without it: list what would go)")

    s = add("check-config", "validate a config file: `PATH: key.path: message` lines, exit 2 on error",
            cmd_check_config)
    s.add_argument("path", nargs="?", help="the config file (or -c; default: $EDGE_AGENT_CONFIG, else "
                                           "/etc/edge-agent/config.toml)")

    s = add("doctor", "check config, camera, GPIO, platforms, MQTT, printer, disk, clock; exit 1 on any FAIL",
            cmd_doctor)
    s.add_argument("--json", action="store_true", help="print JSON")

    s = add("simulate", "the built-in EasyAI + Haiyi platform simulator", cmd_simulate, parents=())
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=3001, help="port to listen on")
    s.add_argument("--latency", type=float, default=2.0, help="seconds a task takes on a GPU")
    s.add_argument("--fail-rate", type=float, default=0.0, help="fraction of API calls that fail (0-1)")
    s.add_argument("--seed", type=int, help="random seed, for repeatable failures")
    s.add_argument("--workers", type=_count, default=4, help="tasks that run at once (GPUs)")
    s.add_argument("--key", action="append", help="an accepted API key (repeatable; none: any key)")
    s.add_argument("--quirk", action="append", help="a quirk of a real server to show (repeatable)")
    s.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    s = add("demo", "simulator + synthetic camera + the agent + N jobs", cmd_demo, parents=())
    s.add_argument("--count", type=_count, default=3, help="how many jobs")
    s.add_argument("--dir", default="demo-output", help="where the demo keeps its queue and results")
    s.add_argument("--latency", type=float, default=1.5, help="seconds a simulated task takes")
    s.add_argument("--serve", action="store_true", help="keep the agent and its API running after the jobs")
    s.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as e:
        if str(e):
            print(f"edge-agent: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `edge-agent queue list | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
