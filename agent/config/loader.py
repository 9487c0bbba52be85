"""Reading a config file: TOML → relative paths resolved → models validated → cross-field checks → secrets.

``load_config`` raises ``ConfigError`` with every problem at once, each as ``PATH: key.path: message``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.config.checks import endpoint_kind_issues, semantic_checks
from agent.config.errors import ConfigError, ConfigIssue, friendly
from agent.config.model import Config
from agent.config.paths import resolve_relative_paths
from agent.config.secrets import Secrets, read_secrets

DEFAULT_CONFIG_PATH = Path("/etc/edge-agent/config.toml")


def config_path_from_env(explicit: str | os.PathLike[str] | None) -> Path:
    """`-c PATH`, else `$EDGE_AGENT_CONFIG`, else the system default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("EDGE_AGENT_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG_PATH


@dataclass
class LoadedConfig:
    config: Config
    warnings: list[str]
    secrets: Secrets


def parse_config(raw: dict[str, Any], path: Path) -> LoadedConfig:
    """Validate an already-parsed TOML document (raises ConfigError)."""
    warnings: list[str] = []
    resolve_relative_paths(Config, raw, path.parent.resolve())
    wrong_endpoint = endpoint_kind_issues(raw)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        issues = [friendly(err, raw, Config) for err in e.errors() if not _in_profile(err["loc"], wrong_endpoint)]
        raise ConfigError(path, issues + list(wrong_endpoint.values())) from None
    cfg._source = path
    issues = list(wrong_endpoint.values()) + semantic_checks(cfg)
    secrets = read_secrets(cfg, issues, warnings)
    if issues:
        raise ConfigError(path, issues)
    return LoadedConfig(cfg, warnings, secrets)


def _in_profile(loc: tuple[Any, ...], indexes: dict[int, ConfigIssue]) -> bool:
    return len(loc) >= 2 and loc[0] == "profiles" and loc[1] in indexes


def load_config(path: str | os.PathLike[str]) -> LoadedConfig:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, [ConfigIssue("", "config file not found")]) from None
    except OSError as e:
        raise ConfigError(path, [ConfigIssue("", f"cannot read config file: {e.strerror}")]) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(path, [ConfigIssue("", "saved as UTF-16 (Windows 'Unicode'); save it as UTF-8")]) from None
    try:
        raw = tomllib.loads(data.decode("utf-8-sig"))  # the byte-order mark Windows Notepad writes is fine
    except UnicodeDecodeError:
        raise ConfigError(path, [ConfigIssue("", "not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, [ConfigIssue("", f"TOML syntax error: {e}")]) from None
    return parse_config(raw, path)
