"""`edge-agent once` (one job in the foreground) and `edge-agent trigger` (ask the running daemon for one)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from agent.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    api_client,
    daemon_url,
    load,
    make_agent,
    print_json,
    setup_logging,
)
from agent.jobs.model import FINAL_STATES, Job, JobState
from agent.jobs.progress import progress_of

if TYPE_CHECKING:
    from agent.core import Agent


def cmd_once(args: argparse.Namespace) -> int:
    loaded = load(args)
    setup_logging(args, loaded, default="ERROR")  # the outcome line says what happened
    from agent.choices import find_choice
    from agent.commands import Command, CommandError

    try:
        find_choice(loaded.config.profile(args.profile), args.choice)  # usage errors before anything is queued
    except KeyError:
        raise CliError(f"unknown profile {args.profile!r}", EXIT_USAGE) from None
    except CommandError as e:
        raise CliError(e.message, EXIT_USAGE) from None
    if not args.image and loaded.config.camera.driver in ("picamera2", "opencv") and daemon_url(loaded):
        raise CliError("the running daemon holds the camera: use `edge-agent trigger --wait` (or `once --image FILE`)")
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
    for plat in loaded.config.platforms.values():
        # no request outlives --timeout: a sync endpoint (images.edits) holds its answer until the picture is
        # done, and stopping waits for a request on the wire (so a task id is never lost)
        plat.read_timeout_s = min(plat.read_timeout_s, args.timeout)
    agent = make_agent(loaded)
    agent.start(recover=False, only_own_jobs=True)

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through agent.stop(): a submit on the wire finishes and is recorded

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    try:
        try:
            if image is not None:
                res = agent.capture_file(image, profile=args.profile, choice=args.choice)
            else:
                res = agent.request(Command("capture", "cli", profile=args.profile, choice=args.choice)).result()
        except CommandError as e:
            raise CliError(e.message) from None
        job_id = res["job_id"]
        assert agent.scheduler.own_jobs is not None  # start(only_own_jobs=True) made the set
        agent.scheduler.own_jobs.add(job_id)
        agent.scheduler.wake()
        try:
            job = _follow(agent, job_id, live=sys.stderr.isatty() and not args.json, timeout=args.timeout)
        except KeyboardInterrupt:
            state = _job(agent, job_id).state.value
            print(
                f"\ninterrupted: job {job_id} stays queued ({state}); the daemon delivers it, or "
                f"`edge-agent queue cancel {job_id[:8]}` drops it",
                file=sys.stderr,
            )
            raise
    finally:
        agent.stop()
    if not job.state.final:
        msg = (
            f"job {job.id} not finished after {args.timeout:.0f} s ({job.state.value}"
            + (f": {job.error}" if job.error else "")
            + "); it stays queued and the daemon will deliver it"
        )
        if args.json:
            print_json(_summary(job, finished=False))
        print(msg, file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print_json(_summary(job, finished=True))
    elif job.state == JobState.DONE:
        for o in job.outputs:
            print(o.path)
    else:
        print(f"job {job.id} {job.state.value}: {job.error}", file=sys.stderr)
    return EXIT_OK if job.state == JobState.DONE else EXIT_FAILED


def _follow(agent: Agent, job_id: str, live: bool, timeout: float) -> Job:
    """Wait for the job to finish (or `timeout`), drawing a progress line on a terminal."""
    last = ""
    start = time.monotonic()
    while True:
        job = _job(agent, job_id)
        if live:
            line = "\r" + progress_line(job, time.monotonic() - start)
            if line != last:
                sys.stderr.write(line.ljust(100)[:100])
                sys.stderr.flush()
                last = line
        if job.state in FINAL_STATES or time.monotonic() - start > timeout:
            if live:
                sys.stderr.write("\n")
            return job
        agent.wait_for(job_id, timeout=0.2)


def progress_line(job: Job, elapsed: float) -> str:
    """One terminal line: stage, bar, percent, the platform's current step or queue, the ETA, time so far."""
    bar_n = int((job.progress or 0) / 5)
    pct = f"{job.progress:>3}%" if job.progress is not None else " --%"
    line = f"{job.stage or job.state.value:<11} [{'#' * bar_n}{'.' * (20 - bar_n)}] {pct}"
    if job.queue_position:
        line += f"  {job.queue_position} ahead"
    if job.step:
        line += f"  {job.step[:30]}"
    if job.eta_s is not None:
        line += f"  ~{job.eta_s:.0f}s left"
    line += f"  {elapsed:5.1f}s"
    if job.error and not job.state.final:
        line += f"  waiting: {job.error[:40]}"
    return line


def _job(agent: Agent, job_id: str) -> Job:
    job = agent.store.get(job_id)
    if job is None:  # only if something deleted it under us (e.g. a purge of a job that failed meanwhile)
        raise CliError(f"job {job_id} is no longer in the queue")
    return job


def cmd_trigger(args: argparse.Namespace) -> int:
    from agent.httpapi.guard import SAME_ORIGIN_PROOF

    loaded = load(args)
    client, _url = api_client(loaded)
    with client:
        body: dict[str, Any] = {"source": "cli"}
        if args.profile:
            body["profile"] = args.profile
        if args.choice:
            body["choice"] = args.choice
        try:
            r = client.post("/api/capture", json=body, headers=SAME_ORIGIN_PROOF)  # the API's same-origin proof
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


def _summary(job: Job, *, finished: bool) -> dict[str, Any]:
    """`once --json`: one object, the same keys whether the job finished or is left queued."""
    return {
        "job_id": job.id,
        "state": job.state.value,
        "profile": job.profile,
        "choice": job.choice,
        **progress_of(job),
        "error": job.error,
        "result_dir": job.result_dir,
        "outputs": [{"type": o.type, "path": o.path} for o in job.outputs] if finished else [],
    }
