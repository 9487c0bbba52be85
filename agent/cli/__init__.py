"""The `edge-agent` command. Exit codes: 0 success; 1 the work failed; 2 bad usage or invalid config.

This module holds the parser and `main` (the console script `edge-agent = "agent.cli:main"`); each command group
lives in its own module: `jobs` (once, trigger), `status`, `queue`, `admin` (run, check-config, doctor), `tools`
(simulate, demo), and `common` (exit codes, CliError, config/store/API helpers).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from collections.abc import Callable, Sequence

from agent import __version__
from agent.cli.common import EXIT_OK, CliError
from agent.cli.kiosk import add_kiosk_args
from agent.cli.printing import add_print_commands
from agent.memory import tune_malloc

Command = Callable[[argparse.Namespace], int]


def _lazy(module: str, name: str) -> Command:
    """A command whose module is imported only when it runs: `edge-agent run` (on a 512 MB Pi, for days) does not
    keep the other commands' code and libraries in memory."""

    def command(args: argparse.Namespace) -> int:
        func: Command = getattr(importlib.import_module(f"agent.cli.{module}"), name)
        return func(args)

    command.__name__ = command.__qualname__ = name
    return command


cmd_run = _lazy("admin", "cmd_run")
cmd_reload = _lazy("admin", "cmd_reload")
cmd_check_config = _lazy("admin", "cmd_check_config")
cmd_doctor = _lazy("admin", "cmd_doctor")
cmd_config = _lazy("admin", "cmd_config")
cmd_once = _lazy("jobs", "cmd_once")
cmd_trigger = _lazy("jobs", "cmd_trigger")
cmd_kiosk = _lazy("kiosk", "cmd_kiosk")
cmd_queue = _lazy("queue", "cmd_queue")
cmd_stats = _lazy("stats", "cmd_stats")
cmd_status = _lazy("status", "cmd_status")
cmd_demo = _lazy("tools", "cmd_demo")
cmd_simulate = _lazy("tools", "cmd_simulate")


def _number(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {v!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {v!r}")
    return x


def _positive(v: str) -> float:
    x = _number(v)
    if not x > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {v}")
    return x


def _seconds(v: str) -> float:
    x = _number(v)
    if x < 0 or x > 86400:
        raise argparse.ArgumentTypeError(f"must be from 0 to 86400 seconds, got {v}")
    return x


def _fraction(v: str) -> float:
    x = _number(v)
    if not 0 <= x <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {v}")
    return x


def _count(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {v!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return n


class _Help(argparse.HelpFormatter):
    """Shows a default only where it says something: not None/False, and not when the help text names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if d in (None, False, argparse.SUPPRESS) or "default" in text or action.option_strings == []:
            return text
        return f"{text} (default: {d})"


def build_parser() -> argparse.ArgumentParser:
    fmt = _Help
    p = argparse.ArgumentParser(prog="edge-agent", description="AI photo booth / AI camera / try-on kiosk agent")
    p.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: `-c` works before or after a sub-command (`queue -c F list` and `queue list -c F`)
    for parser in (p, common):
        parser.add_argument(
            "-c",
            "--config",
            default=argparse.SUPPRESS,
            help="config file (default: $EDGE_AGENT_CONFIG, else /etc/edge-agent/config.toml)",
        )
        parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
        parser.add_argument(
            "--log-level",
            type=str.upper,
            choices=("DEBUG", "INFO", "WARNING", "ERROR"),
            default=argparse.SUPPRESS,
            help="how much to log (default: INFO for run, less for one-shot commands)",
        )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(
        name: str,
        help_: str,
        func: Callable[[argparse.Namespace], int],
        parents: Sequence[argparse.ArgumentParser] = (common,),
    ) -> argparse.ArgumentParser:
        s = sub.add_parser(name, parents=list(parents), help=help_, description=help_, formatter_class=fmt)
        s.set_defaults(func=func)
        return s

    add("run", "the daemon: triggers, queue scheduler, HTTP API, MQTT", cmd_run)
    add("reload", "make the running daemon load its config file again (bad config: refused, old one kept)", cmd_reload)

    s = add("once", "one job in the foreground, with live progress; prints the output paths", cmd_once)
    s.add_argument("--profile", help="the profile to use (default: the first in the config)")
    s.add_argument("--choice", help="one of the profile's choices, by id (a garment, a style)")
    s.add_argument("--image", help="use this photo instead of the camera")
    s.add_argument("--json", action="store_true", help="print one JSON object instead of paths")
    s.add_argument(
        "--timeout",
        type=_positive,
        default=300.0,
        help="give up waiting after this many seconds (the photo stays queued for the daemon)",
    )

    s = add("trigger", "ask the running daemon to start a job; prints its id", cmd_trigger)
    s.add_argument("--profile", help="the profile to use (default: the first in the config)")
    s.add_argument("--choice", help="one of the profile's choices, by id (a garment, a style)")
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
    q = qadd("purge", "delete finished jobs and their files (photos included); unfinished jobs are never touched")
    q.add_argument("--failed", action="store_true", help="failed, expired and cancelled jobs")
    q.add_argument("--done", action="store_true", help="done jobs (delivered results)")
    q.add_argument("--older-than", type=_positive, metavar="DAYS", help="only jobs finished more than DAYS ago")
    q.add_argument("--yes", action="store_true", help="really delete (without it: list what would go)")

    s = add(
        "check-config", "validate a config file: `PATH: key.path: message` lines, exit 2 on error", cmd_check_config
    )
    s.add_argument(
        "path", nargs="?", help="the config file (or -c; default: $EDGE_AGENT_CONFIG, else /etc/edge-agent/config.toml)"
    )

    s = add(
        "doctor", "check config, camera, GPIO, platforms, MQTT, printer, disk, clock; exit 1 on any FAIL", cmd_doctor
    )
    s.add_argument("--json", action="store_true", help="print JSON")

    add_print_commands(add, common, fmt)

    s = add("stats", "per day and per event: captures, jobs done/failed by cause, prints, time to result", cmd_stats)
    s.add_argument("--days", type=_count, default=7, help="how many days back (today included)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--start-event", metavar="NAME", help="begin a named event (a wedding, a weekend) from now on")

    s = add("config", "the config's documentation, from the config models themselves", cmd_config, parents=())
    cs = s.add_subparsers(dest="config_cmd", required=True, metavar="ACTION")
    c = cs.add_parser("reference", help="every key with its type, default and description (Markdown)")
    c.add_argument("-o", "--output", help="write it to this file instead of printing it")

    s = add("kiosk", "wait for the agent, then keep Chromium full screen on the kiosk page", cmd_kiosk)
    add_kiosk_args(s)

    s = add("simulate", "the built-in EasyAI + Haiyi platform simulator", cmd_simulate, parents=())
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=3001, help="port to listen on")
    s.add_argument("--latency", type=_seconds, default=2.0, help="seconds a task takes on a GPU")
    s.add_argument("--fail-rate", type=_fraction, default=0.0, help="fraction of API calls that fail (0-1)")
    s.add_argument("--seed", type=int, help="random seed, for repeatable failures")
    s.add_argument("--workers", type=_count, default=4, help="tasks that run at once (GPUs)")
    s.add_argument("--key", action="append", help="an accepted API key (repeatable; none: any key)")
    s.add_argument("--quirk", action="append", help="a quirk of a real server to show (repeatable)")
    s.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    s = add("demo", "simulator + synthetic camera + the agent + N jobs", cmd_demo, parents=())
    s.add_argument("--count", type=_count, default=3, help="how many jobs")
    s.add_argument("--dir", default="demo-output", help="where the demo keeps its queue and results")
    s.add_argument("--latency", type=_seconds, default=1.5, help="seconds a simulated task takes")
    s.add_argument("--serve", action="store_true", help="keep the agent and its API running after the jobs")
    s.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    tune_malloc()  # before any thread: the heap settings of agent/memory.py hold for every command
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CliError as e:
        if str(e):
            print(f"edge-agent: {e}", file=sys.stderr)
        if getattr(args, "json", False):  # a script reading stdout gets an answer it can parse, also on failure
            what = "invalid config" if e.code == 2 and e.details else str(e) or "failed"
            print(json.dumps({"error": {"message": what, "details": e.details}, "exit_code": e.code}))
        return e.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `edge-agent queue list | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
