"""The one strict JSON reader for everything that arrives from outside (MQTT payloads, HTTP bodies, platform
replies): RFC 8259 only (no NaN / Infinity), bounded in size and depth, UTF-8."""

from __future__ import annotations

import json
from typing import Any


class JSONError(ValueError):
    """Not strict JSON; the message says why in words a sender can act on."""


def _no_constants(name: str) -> Any:
    raise JSONError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e999: valid JSON syntax, but no JSON can carry it back out
        raise JSONError(f"{text[:20]} is too large a number")
    return value


def loads_strict(data: bytes | str, *, max_bytes: int | None = None) -> Any:
    """Parse `data` or raise JSONError ("payload is not UTF-8 text", "... larger than N bytes", "not valid JSON")."""
    if max_bytes is not None and len(data) > max_bytes:
        raise JSONError(f"larger than {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise JSONError("not UTF-8 text") from None
    else:
        text = data
    try:
        return json.loads(text, parse_constant=_no_constants, parse_float=_finite)
    except JSONError:
        raise
    except (ValueError, RecursionError):
        raise JSONError("not valid JSON") from None


def loads_or_none(data: bytes | str) -> Any:
    """Strict JSON, or None for an empty body or anything that is not JSON (for replies read leniently)."""
    if not data.strip():
        return None
    try:
        return loads_strict(data)
    except JSONError:
        return None
