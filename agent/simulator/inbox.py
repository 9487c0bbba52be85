"""What arrived: a readable account of each platform request's inputs, so tests can assert what a client sent.

Each entry: ``{"endpoint", "ts", "fields": {name: text}, "parts": [{"name", "filename", "content_type", "size",
"sha256", "image": [w, h] | None, "format"}], "json": <the body with every data: URL replaced by a description>,
"workflow": <a patched ComfyUI graph, as received>}``. Bytes are never kept, only their size, hash and, for
pictures, their pixel size and format. Served at ``GET /_sim/received`` and by ``Simulator.received()``.
"""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any

from PIL import Image, UnidentifiedImageError

from agent.simulator.wire import BadRequest, Part, decode_data_url

MAX_ENTRIES = 1000


def picture(data: bytes) -> dict[str, Any]:
    """Size, hash and (for a picture) pixel size and format of some bytes."""
    out: dict[str, Any] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "image": None, "format": None}
    try:
        with Image.open(io.BytesIO(data)) as im:
            out["image"], out["format"] = list(im.size), im.format
    except (UnidentifiedImageError, OSError, ValueError):
        pass
    return out


def describe_parts(parts: list[Part]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    fields = {p.name: p.text for p in parts if not p.is_file}
    files = [
        {"name": p.name, "filename": p.filename, "content_type": p.content_type, **picture(p.data)}
        for p in parts
        if p.is_file
    ]
    return fields, files


def describe_json(value: Any) -> Any:
    """The body with each ``data:`` URL replaced by ``{"data_url": mime, ...picture}`` (no bytes kept)."""
    if isinstance(value, dict):
        return {k: describe_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [describe_json(v) for v in value]
    if isinstance(value, str) and value.startswith("data:"):
        try:
            data = decode_data_url(value)
        except BadRequest:
            return {"data_url": "malformed"}
        return {"data_url": value[5 : value.find(";") if ";" in value else 5], **picture(data)}
    return value


def entry(endpoint: str, **info: Any) -> dict[str, Any]:
    return {"endpoint": endpoint, "ts": time.time(), **info}
