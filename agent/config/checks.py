"""Rules that span fields or sections, which a single model's validators cannot see."""

from __future__ import annotations

from typing import Any

from agent.config.errors import ConfigIssue, did_you_mean
from agent.config.model import Config
from agent.config.network import PLATFORM_KINDS
from agent.platforms.modes import endpoints_of

BCM_PINS = range(0, 28)


def endpoint_kind_issues(raw: dict[str, Any]) -> dict[int, ConfigIssue]:
    """Profiles whose endpoint is not one of their platform's kind, by profile index (read from the raw document,
    before validation: such a profile's other keys are judged against the wrong endpoint, so they are not reported).
    """
    platforms = raw.get("platforms")
    profiles = raw.get("profiles")
    if not isinstance(platforms, dict) or not isinstance(profiles, list):
        return {}
    issues: dict[int, ConfigIssue] = {}
    for i, prof in enumerate(profiles):
        if not isinstance(prof, dict) or not isinstance(prof.get("endpoint"), str):
            continue
        plat = platforms.get(prof["platform"]) if isinstance(prof.get("platform"), str) else None
        kind = plat.get("kind") if isinstance(plat, dict) else None
        if kind not in PLATFORM_KINDS:
            continue  # an unknown platform or kind is reported on its own
        allowed = endpoints_of(kind)
        if prof["endpoint"] not in allowed:
            issues[i] = ConfigIssue(
                f"profiles[{i}].endpoint",
                f"{prof['endpoint']!r} is not an endpoint of {'an' if kind[0] in 'aeiou' else 'a'} {kind!r} platform; "
                f"expected one of {', '.join(allowed)}",
            )
    return issues


def semantic_checks(cfg: Config) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    if cfg.printer.copies > cfg.printer.max_copies:
        issues.append(
            ConfigIssue(
                "printer.copies",
                f"{cfg.printer.copies} copies by default, but max_copies is {cfg.printer.max_copies}: every print "
                "would be refused",
            )
        )
    names = [p.name for p in cfg.profiles]
    for i, prof in enumerate(cfg.profiles):
        if names.count(prof.name) > 1 and names.index(prof.name) != i:
            issues.append(ConfigIssue(f"profiles[{i}].name", f"duplicate profile name {prof.name!r}"))
        if prof.platform not in cfg.platforms:
            hint = did_you_mean(prof.platform, list(cfg.platforms))
            issues.append(
                ConfigIssue(
                    f"profiles[{i}].platform",
                    f"unknown platform {prof.platform!r}"
                    + (hint or f"; defined: {', '.join(cfg.platforms) or 'none'}"),
                )
            )
        plat = cfg.platforms.get(prof.platform)
        if (
            getattr(prof, "image_as", None) == "upload"
            and plat is not None
            and not plat.upload_url
            and not plat.public_dir
        ):
            issues.append(
                ConfigIssue(
                    f"profiles[{i}].image_as",
                    f'"upload" needs platforms.{prof.platform}.upload_url, or public_dir and public_base_url '
                    "(EasyAI has no upload route of its own)",
                )
            )
    if not cfg.profiles:
        issues.append(ConfigIssue("profiles", "at least one [[profiles]] entry is needed"))
    issues += _pin_issues(cfg, names)
    if cfg.mqtt.ca_file is not None and not cfg.mqtt.ca_file.is_file():
        issues.append(ConfigIssue("mqtt.ca_file", f"no such file: {cfg.mqtt.ca_file}"))
    if not cfg.http.is_loopback and not (cfg.http.token or cfg.http.token_file or cfg.http.token_env):
        issues.append(
            ConfigIssue("http.listen", f"{cfg.http.host} is not loopback: set http.token_file so the API needs a token")
        )
    return issues


def _pin_issues(cfg: Config, profile_names: list[str]) -> list[ConfigIssue]:
    """Every BCM pin exists and is used once; buttons name existing profiles."""
    issues: list[ConfigIssue] = []
    pins: dict[int, str] = {}

    def claim(pin: int | None, where: str) -> None:
        if pin is None:
            return
        if pin not in BCM_PINS:
            issues.append(ConfigIssue(where, f"BCM pin {pin} does not exist (0-27)"))
            return
        if pin in pins:
            issues.append(ConfigIssue(where, f"pin {pin} is already used by {pins[pin]}"))
            return
        pins[pin] = where

    for i, b in enumerate(cfg.buttons):
        claim(b.pin, f"buttons[{i}].pin")
        for prof_key in ("profile", "hold_profile"):
            prof_name = getattr(b, prof_key)
            if prof_name is not None and prof_name not in profile_names:
                issues.append(ConfigIssue(f"buttons[{i}].{prof_key}", f"unknown profile {prof_name!r}"))
        issues += _button_choice_issues(cfg, i)
    for led in ("ready_led", "busy_led", "error_led"):
        claim(getattr(cfg.indicators, led), f"indicators.{led}")
    return issues


def _button_choice_issues(cfg: Config, i: int) -> list[ConfigIssue]:
    """A button's `choice` / `hold_choice` is one of its profile's choices, on a capture."""
    from agent.choices import find_choice
    from agent.commands import CommandError

    b = cfg.buttons[i]
    issues: list[ConfigIssue] = []
    for key, action, prof_name in (("choice", b.action, b.profile), ("hold_choice", b.hold_action, b.hold_profile)):
        choice = getattr(b, key)
        if choice is None:
            continue
        if action != "capture":
            which = key.replace("choice", "action")
            issues.append(ConfigIssue(f"buttons[{i}].{key}", f'a choice needs {which} = "capture" (it is {action!r})'))
            continue
        try:
            find_choice(cfg.profile(prof_name), choice)
        except (KeyError, IndexError):
            continue  # the unknown profile (or none at all) is reported on its own
        except CommandError as e:
            issues.append(ConfigIssue(f"buttons[{i}].{key}", e.message))
    return issues
