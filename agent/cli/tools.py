"""`edge-agent simulate` (the built-in platform simulator) and `edge-agent demo` (the whole loop, no hardware)."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.cli.common import EXIT_OK, EXIT_USAGE, CliError, setup_logging


def cmd_simulate(args: argparse.Namespace) -> int:
    from agent.logs import setup_logging as setup
    from agent.simulator import SimConfig, run_forever

    setup("DEBUG" if args.verbose else "INFO")
    try:
        cfg = SimConfig(
            host=args.host,
            port=args.port,
            latency=args.latency,
            fail_rate=args.fail_rate,
            seed=args.seed,
            api_keys=tuple(args.key or ()),
            quirks=frozenset(args.quirk or ()),
            workers=args.workers,
        )
    except (ValueError, TypeError) as e:
        raise CliError(str(e), EXIT_USAGE) from None
    try:
        run_forever(cfg)
    except OSError as e:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {e.strerror}") from None
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from agent.demo import run_demo

    setup_logging(args, None, default="WARNING")
    out = Path(args.dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".edge-agent-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise CliError(f"cannot use {out} for the demo (--dir): {e.strerror}", EXIT_USAGE) from None
    return run_demo(count=args.count, out_dir=out, latency=args.latency, keep_serving=args.serve)
