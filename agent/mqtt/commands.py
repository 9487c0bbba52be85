"""Command payloads: strict validation of what arrives on B/cmd/<action>, and the ttl_s/ts expiry rule.

A payload is a JSON object; unknown keys are refused so a typo never silently means "the default"::

    capture: {"request_id", "profile"?, "choice"?, "selected"?, "params"?, "ttl_s"?, "ts"?}
             ("selected": true takes the profile and choice Home Assistant selected, see selection.py)
    cancel | retry | print: {"request_id", "job_id"?, "ttl_s"?, "ts"?}   (no job_id: the latest job, like a button)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from agent.choices import CHOICE_ID
from agent.commands import ACTIONS, Command
from agent.jsonutil import JSONError, loads_strict
from agent.logs import has_control_chars

MAX_PAYLOAD = 64 * 1024
REQUEST_ID_MAX = 128

_CAPTURE_KEYS = frozenset({"request_id", "profile", "choice", "selected", "params", "ttl_s", "ts"})
_JOB_KEYS = frozenset({"request_id", "job_id", "ttl_s", "ts"})
_PRINT_KEYS = _JOB_KEYS | {"copies"}
_CONFIG_KEYS = frozenset({"request_id", "config", "ttl_s", "ts"})
MQTT_ACTIONS = (*ACTIONS, "config")  # config: a fleet config push, MQTT only (agent/configpush.py)


class Rejected(Exception):
    """A command the bridge answers with an error itself; nothing reached the core."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass
class ParsedCommand:
    request_id: str
    command: Command
    ttl_s: float | None = None
    ts: float | None = None
    selected: bool = False  # capture: use the booth's current selection (profile and choice)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _request_id(v: Any) -> str | None:
    """A request_id is echoed into responses, events, the job record and the log: 1-128 characters, none of them a
    control character (a line break in it could forge a log line, or a line in anything that reads job.json)."""
    ok = isinstance(v, str) and 1 <= len(v) <= REQUEST_ID_MAX and not has_control_chars(v)
    return v if ok else None


def _payload_error(e: JSONError) -> str:
    """The sender's wording for a payload that is not strict JSON (a NaN is simply "not valid JSON" here)."""
    why = str(e)
    if why.startswith("larger than"):
        return f"payload {why}"
    if why == "not UTF-8 text":
        return "payload is not UTF-8 text"
    return "payload is not valid JSON"


def peek_request_id(payload: bytes) -> str | None:
    """The request_id of a payload if it has a valid one (to address an error response), else None."""
    try:
        obj = loads_strict(payload, max_bytes=MAX_PAYLOAD)
    except JSONError:
        return None
    return _request_id(obj.get("request_id")) if isinstance(obj, dict) else None


def parse_command(action: str, payload: bytes) -> ParsedCommand:
    """Validate one command payload; raises Rejected("bad_request", ...) for anything that is not a command."""
    if action not in MQTT_ACTIONS:
        rid = peek_request_id(payload)
        raise Rejected("bad_request", f"unknown action {action[:64]!r}; expected one of {', '.join(MQTT_ACTIONS)}", rid)
    try:
        obj = loads_strict(payload, max_bytes=MAX_PAYLOAD)
    except JSONError as e:
        raise Rejected("bad_request", _payload_error(e)) from None
    if not isinstance(obj, dict):
        raise Rejected("bad_request", f"payload must be a JSON object, got {type(obj).__name__}")
    if "request_id" not in obj:
        raise Rejected("bad_request", "request_id is required")
    rid = _request_id(obj["request_id"])
    if rid is None:
        raise Rejected(
            "bad_request", f"request_id must be a string of 1-{REQUEST_ID_MAX} characters, without control characters"
        )

    allowed = {"capture": _CAPTURE_KEYS, "print": _PRINT_KEYS, "config": _CONFIG_KEYS}.get(action, _JOB_KEYS)
    unknown = sorted(str(k) for k in obj if k not in allowed)
    if unknown:
        raise Rejected(
            "bad_request",
            f"unknown key(s) {', '.join(repr(k[:64]) for k in unknown[:5])} for {action}; "
            f"allowed: {', '.join(sorted(allowed))}",
            rid,
        )
    ttl_s = obj.get("ttl_s")
    if ttl_s is not None and not (_is_number(ttl_s) and ttl_s > 0):
        raise Rejected("bad_request", "ttl_s must be a positive number of seconds", rid)
    ts = obj.get("ts")
    if ts is not None and not (_is_number(ts) and ts >= 0):
        raise Rejected("bad_request", "ts must be unix seconds (a non-negative number)", rid)
    if ts is not None and ts > 1e11:
        raise Rejected("bad_request", "ts must be unix seconds, not milliseconds", rid)

    if action == "capture":
        profile = obj.get("profile")
        if profile is not None and not (isinstance(profile, str) and 1 <= len(profile) <= 128):
            raise Rejected("bad_request", "profile must be a profile name (string)", rid)
        choice = obj.get("choice")
        if choice is not None and not (isinstance(choice, str) and CHOICE_ID.match(choice)):
            raise Rejected(
                "bad_request", "choice must be a choice id (letters, digits, _ . -), never a path or URL", rid
            )
        selected = obj.get("selected", False)
        if not isinstance(selected, bool):
            raise Rejected("bad_request", "selected must be true or false", rid)
        if selected and (profile is not None or choice is not None):
            raise Rejected("bad_request", "selected: true takes the selection; do not name a profile or choice", rid)
        params = obj.get("params")
        if params is not None and not isinstance(params, dict):
            raise Rejected("bad_request", "params must be a JSON object", rid)
        cmd = Command(
            action="capture", source="mqtt", profile=profile, choice=choice, params=dict(params or {}), request_id=rid
        )
    elif action == "config":
        text = obj.get("config")
        if not isinstance(text, str) or not text.strip():
            raise Rejected("bad_request", "config must be the whole config file as a TOML string", rid)
        cmd = Command(action="config", source="mqtt", params={"config": text}, request_id=rid)
    else:
        job_id = obj.get("job_id")
        if job_id is not None and not (isinstance(job_id, str) and 1 <= len(job_id) <= 128):
            raise Rejected("bad_request", "job_id must be a job id (string)", rid)
        job_params: dict[str, Any] = {}
        if action == "print" and "copies" in obj:
            copies = obj["copies"]
            if not (isinstance(copies, int) and not isinstance(copies, bool) and 1 <= copies <= 99):
                raise Rejected("bad_request", "copies must be a whole number from 1 to 99", rid)
            job_params["copies"] = copies  # the print service checks it against [printer] max_copies
        cmd = Command(action=action, source="mqtt", job_id=job_id, params=job_params, request_id=rid)  # type: ignore[arg-type]
    return ParsedCommand(
        rid,
        cmd,
        float(ttl_s) if ttl_s is not None else None,
        float(ts) if ts is not None else None,
        selected=action == "capture" and obj.get("selected") is True,
    )


def check_age(parsed: ParsedCommand, now: float) -> None:
    """Raises Rejected("expired") for a command older than its ttl_s (measured from its ts).

    Without ``ts`` the device cannot know how long a command waited in the broker (a persistent session keeps
    commands for a day), so senders that care set ``ts`` - or the MQTT 5 Message Expiry Interval, which the broker
    itself honours."""
    if parsed.ttl_s is None or parsed.ts is None:
        return
    age = now - parsed.ts
    if age > parsed.ttl_s:
        raise Rejected(
            "expired", f"command is {age:.1f}s old, older than its ttl_s={parsed.ttl_s:g}", parsed.request_id
        )
