"""What every `edge-agent` command shares: exit codes, CliError, loading the config, the store, the daemon's API."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from agent.config import ConfigError, LoadedConfig, config_path_from_env, load_config
from agent.jobs.model import Job

if TYPE_CHECKING:
    import httpx

    from agent.core import Agent
    from agent.jobs.store import JobStore

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """Ends the command: `edge-agent: <message>` on stderr (nothing for an empty message), exit `code`."""

    def __init__(self, message: str, code: int = EXIT_FAILED, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details or []  # e.g. the config's `PATH: key: message` lines (already on stderr)


def load(args: argparse.Namespace) -> LoadedConfig:
    path = config_path_from_env(getattr(args, "config", None))
    try:
        return load_config(path)
    except ConfigError as e:
        for line in e.lines():
            print(line, file=sys.stderr)
        raise CliError("", EXIT_USAGE, details=e.lines()) from None


def setup_logging(args: argparse.Namespace, loaded: LoadedConfig | None = None, default: str = "INFO") -> None:
    from agent.logs import setup_logging as setup

    level = getattr(args, "log_level", None) or ("DEBUG" if getattr(args, "verbose", False) else default)
    setup(level, loaded.secrets.all_values() if loaded else ())


def make_agent(loaded: LoadedConfig) -> Agent:
    """The Agent, or a clear CliError when its folders or its store cannot be used."""
    from agent.core import Agent
    from agent.jobs.store import StoreError

    try:
        return Agent(loaded)
    except StoreError as e:
        raise CliError(str(e)) from None
    except OSError as e:
        raise CliError(
            f"cannot use {e.filename or 'the state folders'}: {e.strerror} (check [device] state_dir "
            "and output_dir, and their owner)"
        ) from None


def open_store(loaded: LoadedConfig) -> JobStore:
    from agent.jobs.store import JobStore, StoreError

    db = loaded.config.device.state_dir / "jobs.db"
    if not db.exists():
        raise CliError(f"no job store at {db} (the agent has not run with this config yet)")
    try:
        return JobStore(db)
    except StoreError as e:
        raise CliError(str(e)) from None


def daemon_url(loaded: LoadedConfig) -> str | None:
    from agent.daemon import daemon_info

    info = daemon_info(loaded.config.device.state_dir)
    return info["url"] if info else None


def api_client(loaded: LoadedConfig) -> tuple[httpx.Client, str]:
    """A client for the running daemon's HTTP API (with the token), or CliError when no daemon runs."""
    import httpx

    url = daemon_url(loaded)
    if url is None:
        raise CliError(
            f"the daemon is not running (no live {loaded.config.device.state_dir}/daemon.json); "
            "start it with `edge-agent run` or `systemctl start edge-agent`"
        )
    headers = {}
    if loaded.secrets.http_token is not None:
        headers["Authorization"] = f"Bearer {loaded.secrets.http_token.get_secret_value()}"
    return httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(35.0, connect=3.0)), url


def resolve_job(store: JobStore, ref: str) -> Job:
    """A job by its id or a unique prefix of 4+ characters (what a technician types from `queue list`)."""
    from agent.jobs.store import PrefixTooShort

    try:
        return store.resolve(ref)
    except PrefixTooShort as e:
        raise CliError(str(e), EXIT_USAGE) from None
    except LookupError as e:
        raise CliError(str(e), EXIT_USAGE) from None  # one rule: a name that matches nothing is bad usage (2)


def age(ts: float) -> str:
    d = max(0, time.time() - ts)
    if d < 90:
        return f"{d:.0f}s"
    if d < 5400:
        return f"{d / 60:.0f}m"
    if d < 172800:
        return f"{d / 3600:.0f}h"
    return f"{d / 86400:.0f}d"


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True))
