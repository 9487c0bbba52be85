"""`edge-agent run` (the daemon), `check-config` and `doctor`: what an installer and a field technician run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, load, print_json, setup_logging
from agent.config import ConfigError, config_path_from_env, load_config


def cmd_run(args: argparse.Namespace) -> int:
    loaded = load(args)
    setup_logging(args, loaded)
    from agent.configpush import effective
    from agent.daemon import CannotStart, run

    if loaded.config.source is not None:
        loaded, _ = effective(loaded, loaded.config.source)  # a config pushed by the fleet, when newer
    from agent.jobs.store import StoreError

    try:
        return run(loaded)
    except StoreError as e:
        raise CliError(str(e)) from None
    except CannotStart as e:
        raise CliError(str(e)) from None
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise CliError(
            f"cannot start: {where}{e.strerror or e} (check [device] state_dir and output_dir, and their owner)"
        ) from None


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


def cmd_doctor(args: argparse.Namespace) -> int:
    from agent.doctor import FAIL, Check, render, run_checks

    path = config_path_from_env(getattr(args, "config", None))
    try:
        loaded = load_config(path)
    except ConfigError as e:  # the table still says what is wrong; nothing else can be checked without a config
        checks = [Check("config", FAIL, line) for line in e.lines()]
        if args.json:
            print_json([c.as_dict() for c in checks])
        else:
            render(checks)
        return EXIT_USAGE
    setup_logging(args, loaded, default="CRITICAL")
    checks = run_checks(loaded)
    if args.json:
        print_json([c.as_dict() for c in checks])
    else:
        render(checks)
    return EXIT_FAILED if any(c.status == FAIL for c in checks) else EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    from agent.config.reference import reference

    text = reference()
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise CliError(f"cannot write {args.output}: {e.strerror}", EXIT_USAGE) from None
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_reload(args: argparse.Namespace) -> int:
    """Ask the running daemon to load its config file again (the same as SIGHUP / `systemctl reload`)."""
    import httpx

    from agent.cli.common import api_client

    try:
        loaded = load(args)
    except CliError:
        print("edge-agent: not reloaded: the daemon keeps running its current config", file=sys.stderr)
        raise
    client, _ = api_client(loaded)
    try:
        with client:
            r = client.post("/api/reload", json={}, headers={"X-Edge-Agent": "1"})
        body = r.json()
    except (httpx.HTTPError, ValueError) as e:
        raise CliError(f"the daemon did not answer the reload: {e}") from None
    if r.status_code not in (200, 422) or "ok" not in body:
        raise CliError(f"the daemon refused the reload: {body.get('error', {}).get('message', r.status_code)}")
    if body["ok"]:
        print("config reloaded" + (f"; restarted {', '.join(body['restarted'])}" if body["restarted"] else ""))
        for line in body["next_restart"]:
            print(f"takes effect at the next restart: {line}")
        return EXIT_OK
    print("config refused; the daemon keeps running its current config:", file=sys.stderr)
    for line in body["errors"]:
        print(line, file=sys.stderr)
    return EXIT_USAGE
