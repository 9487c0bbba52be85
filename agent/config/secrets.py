"""Secrets (platform keys, the MQTT password, the HTTP token) resolved at load time into ``SecretStr`` values.

Each comes from ``<name>_file`` (preferred), ``<name>_env``, or inline (accepted with a warning). They are kept in
``Secrets``, apart from the config models, so nothing that is ever serialised holds one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from agent.config.errors import ConfigIssue
from agent.config.model import Config


@dataclass
class Secrets:
    """Resolved secrets, kept apart from anything that is ever serialised."""

    platform_keys: dict[str, SecretStr] = field(default_factory=dict)
    mqtt_password: SecretStr | None = None
    http_token: SecretStr | None = None

    def all_values(self) -> list[str]:
        vals = [s.get_secret_value() for s in self.platform_keys.values()]
        vals += [s.get_secret_value() for s in (self.mqtt_password, self.http_token) if s is not None]
        return [v for v in vals if v]


def _looks_like_a_key(name: str) -> bool:
    """A file name that is really a token: long, no extension, no spaces, letters and digits mixed with - _ ."""
    return (
        len(name) >= 16
        and "." not in name.lstrip(".")
        and re.fullmatch(r"[A-Za-z0-9_\-+/=:]+", name) is not None
        and any(c.isdigit() for c in name)
    )


def read_secret(
    issues: list[ConfigIssue],
    warnings: list[str],
    where: str,
    name: str,
    inline: SecretStr | None,
    file: Path | None,
    env: str | None,
) -> SecretStr | None:
    """One secret from its three possible keys (``name``, ``name_file``, ``name_env``) of section ``where``."""
    if inline is not None:
        warnings.append(f"{where}.{name}: a secret written in the config file; prefer {name}_file")
        return inline
    if file is not None:
        try:
            value = file.read_bytes().decode("utf-8-sig").strip()  # a BOM (Windows Notepad) is not part of a key
        except UnicodeDecodeError:
            issues.append(
                ConfigIssue(f"{where}.{name}_file", f"{file} is not UTF-8 text (saved as UTF-16?); save it as UTF-8")
            )
            return None
        except OSError as e:
            if _looks_like_a_key(file.name):  # the key itself pasted where its file's path goes: never echo it
                issues.append(
                    ConfigIssue(
                        f"{where}.{name}_file",
                        (
                            f"this looks like the {name.replace('_', ' ')} itself, not a file's path (its value is not shown); "
                            f"put it in a file readable only by the agent and give that file's path here"
                        ),
                    )
                )
            elif isinstance(e, FileNotFoundError):
                issues.append(ConfigIssue(f"{where}.{name}_file", f"no such file: {file}"))
            else:
                issues.append(ConfigIssue(f"{where}.{name}_file", f"cannot read {file}: {e.strerror}"))
            return None
        if not value:
            issues.append(ConfigIssue(f"{where}.{name}_file", f"file is empty: {file}"))
            return None
        return SecretStr(value)
    if env is not None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):  # e.g. the key itself pasted here: never echo it
            issues.append(
                ConfigIssue(f"{where}.{name}_env", "must be the name of an environment variable (like EASYAI_API_KEY)")
            )
            return None
        value = os.environ.get(env, "").strip()
        if not value:
            issues.append(ConfigIssue(f"{where}.{name}_env", f"environment variable {env} is not set"))
            return None
        return SecretStr(value)
    return None


def read_secrets(cfg: Config, issues: list[ConfigIssue], warnings: list[str]) -> Secrets:
    """Every secret the config names; problems are appended to ``issues``, advice to ``warnings``."""
    secrets = Secrets()
    for name, plat in cfg.platforms.items():
        key = read_secret(
            issues, warnings, f"platforms.{name}", "api_key", plat.api_key, plat.api_key_file, plat.api_key_env
        )
        if key is not None:
            secrets.platform_keys[name] = key
        else:
            warnings.append(f"platforms.{name}: no api key configured (api_key_file or api_key_env)")
    mqtt, http = cfg.mqtt, cfg.http
    secrets.mqtt_password = read_secret(
        issues, warnings, "mqtt", "password", mqtt.password, mqtt.password_file, mqtt.password_env
    )
    secrets.http_token = read_secret(issues, warnings, "http", "token", http.token, http.token_file, http.token_env)
    return secrets
