"""Reading values out of platform replies: neither platform publishes a schema, so every field is read leniently
(a wrong type is "absent", never a crash) and turned into typed values at this edge."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    """A JSON answer from the platform (status < 400)."""

    status: int
    body: Any  # parsed JSON: dict, list, str, number, or None for an empty body


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str | None:
    """A task id or name as text; ints are common (Haiyi), bools and containers are not ids."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        text = str(value).strip()
        return text or None
    return None


def as_percent(value: Any) -> int | None:
    """Progress 0-100 from a number (a float <= 1 is a fraction); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        value *= 100
    return int(min(100, max(0, round(value))))


def as_position(value: Any) -> int | None:
    """A queue position: a non-negative integer, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def stringify(value: Any) -> str | None:
    """A param as a multipart field: scalars as text, bools as true/false, containers as JSON, None skipped."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def error_message_from(body: Any, _depth: int = 0) -> str | None:
    """The platform's own words from an error body: OpenAI, NestJS, Haiyi and plain shapes. Looks at most three
    ``data`` wrappers deep: a reply nested 900 deep is garbage, not a reason to recurse."""
    if isinstance(body, str):
        return body or None
    if not isinstance(body, dict):
        return None
    err = body.get("error")
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])
    for key in ("message", "msg", "detail"):  # NestJS: {"statusCode", "message", "error": "Not Found"}
        val = body.get(key)
        if isinstance(val, list):  # NestJS validation errors: a list of strings
            val = "; ".join(str(v) for v in val)
        if val:
            return str(val)
    if isinstance(err, str) and err:
        return err
    data = body.get("data")
    if isinstance(data, dict) and _depth < 3:
        return error_message_from(data, _depth + 1)
    return None
