"""Relative paths in the file are relative to the config file's folder, wherever the daemon was started.

The raw TOML is fixed before validation, led by the models themselves: every value whose field is typed ``Path``
(also inside lists, tables and the tagged unions of cameras, platforms and profiles) is resolved, so a mode that
adds a file key needs nothing here. ``~`` is expanded. The one exception is written out: an OpenCV ``device`` is a
path only when it is not an index, a ``/dev`` node or a URL.
"""

from __future__ import annotations

import collections.abc
import os
import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from agent.schema import is_model, unwrap_annotated


def resolve_relative_paths(model: type[BaseModel], raw: dict[str, Any], base: Path) -> None:
    """Rewrite, in place, every relative path in ``raw`` (a document for ``model``) against ``base``."""
    _walk(model, raw, base)
    cam = raw.get("camera")
    if isinstance(cam, dict) and cam.get("driver") == "opencv" and isinstance(cam.get("device"), str):
        dev = cam["device"]
        if not dev.isdigit() and not dev.startswith("/dev/") and not re.match(r"^[a-z]+://", dev):
            cam["device"] = _fix(dev, base)


def _fix(value: Any, base: Path) -> Any:
    if not isinstance(value, str) or not value:
        return value
    if value.startswith("~"):
        return os.path.expanduser(value)
    if not os.path.isabs(value):
        return os.path.normpath(base / value)
    return value


def _is_path(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Path)


def _pick(models: list[type[BaseModel]], value: Any) -> type[BaseModel] | None:
    """The member of a tagged union that ``value`` selects (by a ``Literal`` field), or the only one."""
    if len(models) == 1:
        return models[0]
    if not isinstance(value, dict):
        return None
    for tag in ("driver", "kind", "endpoint"):  # the discriminator first: other Literal fields may share values
        for m in models:
            f = m.model_fields.get(tag)
            ann = unwrap_annotated(f.annotation) if f is not None else None
            if tag in value and get_origin(ann) is Literal and value[tag] in get_args(ann):
                return m
    for m in models:
        for name, f in m.model_fields.items():
            ann = unwrap_annotated(f.annotation)
            if get_origin(ann) is Literal and name in value and value[name] in get_args(ann):
                return m
    return None


def _walk(tp: Any, value: Any, base: Path) -> Any:
    tp = unwrap_annotated(tp)
    origin = get_origin(tp)
    if _is_path(tp):
        return _fix(value, base)
    if origin in (Union, types.UnionType):
        members = [unwrap_annotated(a) for a in get_args(tp) if a is not type(None)]
        if any(_is_path(m) for m in members):
            return _fix(value, base)
        chosen = _pick([m for m in members if is_model(m)], value)
        return _walk(chosen, value, base) if chosen is not None else value
    if origin in (list, collections.abc.Sequence) and isinstance(value, list):
        (item,) = get_args(tp)
        return [_walk(item, v, base) for v in value]
    if origin is dict and isinstance(value, dict):
        _, item = get_args(tp)
        return {k: _walk(item, v, base) for k, v in value.items()}
    if is_model(tp) and isinstance(value, dict):
        for key, v in value.items():
            f = tp.model_fields.get(key)
            if f is not None:
                value[key] = _walk(f.annotation, v, base)
    return value
