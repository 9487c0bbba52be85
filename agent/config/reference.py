"""`edge-agent config reference`: every config key with its type, default and description, written from the config
models themselves (docs/CONFIG.md is this output, checked in; a test fails when it drifts from the models).

A section that is a union (the camera by ``driver``, a platform by ``kind``, a profile by ``endpoint``) gets one
table per variant, since each variant accepts only its own keys.
"""

from __future__ import annotations

import enum
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from agent.schema import is_model, unwrap_annotated

HEADER = """# Config reference

Every key of `/etc/edge-agent/config.toml`, written by `edge-agent config reference` from the config models (do not
edit by hand: a test compares this file with the models). Unknown keys are errors. Secrets come from `*_file` or
`*_env` keys. Check a file with `edge-agent check-config PATH`.
"""


def _variants(tp: Any) -> list[Any]:
    tp = unwrap_annotated(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return [unwrap_annotated(a) for a in get_args(tp) if a is not type(None)]
    return [tp]


def type_name(tp: Any) -> str:
    tp = unwrap_annotated(tp)
    origin = get_origin(tp)
    if origin is Literal:
        return " \\| ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in get_args(tp))
    if origin in (Union, types.UnionType):
        parts = [type_name(a) for a in get_args(tp) if a is not type(None)]
        optional = type(None) in get_args(tp)
        return " or ".join(parts) + (" (optional)" if optional else "")
    if origin in (list, tuple, set, frozenset):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return "table"
    if is_model(tp):
        return "table"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " \\| ".join(f'`"{m.value}"`' for m in tp)
    if isinstance(tp, type) and issubclass(tp, Path):
        return "path"
    if getattr(tp, "__name__", "") == "SecretStr":
        return "text (a secret: prefer the `_file` key)"
    names = {str: "text", int: "integer", float: "number", bool: "true/false"}
    if isinstance(tp, type):
        return names.get(tp, tp.__name__)
    return str(tp).replace("typing.", "")


def _default(f: FieldInfo) -> str:
    if f.default_factory is not None:
        try:
            v = f.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "-"
        if isinstance(v, BaseModel):
            return "(see the table)"
        return f"`{_toml(v)}`" if v not in ([], {}) else "empty"
    if f.default is PydanticUndefined:
        return "**required**"
    if f.default is None:
        return "not set"
    return f"`{_toml(f.default)}`"


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, enum.Enum):
        v = v.value
    if isinstance(v, str | Path):
        return f'"{v}"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    return str(v)


def _limits(f: FieldInfo) -> str:
    out = []
    for m in f.metadata:
        for attr, word in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"), ("min_length", "min length")):
            v = getattr(m, attr, None)
            if v is not None:
                out.append(f"{word} {v}")
    return f" ({', '.join(out)})" if out else ""


def _table(model: type[BaseModel], heading: str, level: int, out: list[str], path: str) -> None:
    out.append(f"{'#' * level} `{heading}`\n")
    doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    if doc and not doc.startswith(model.__name__ + "("):
        out.append(doc + "\n")
    out.append("| key | type | default | what it does |\n|---|---|---|---|")
    nested: list[tuple[str, Any, FieldInfo]] = []
    for name, f in model.model_fields.items():
        desc = (f.description or "").replace("|", "\\|")
        out.append(f"| `{name}` | {type_name(f.annotation)}{_limits(f)} | {_default(f)} | {desc} |")
        inner = [v for v in _variants(f.annotation) if is_model(v)]
        if not inner and get_origin(unwrap_annotated(f.annotation)) is list:
            inner = [v for a in get_args(unwrap_annotated(f.annotation)) for v in _variants(a) if is_model(v)]
        if inner:
            nested.append((name, inner, f))
    out.append("")
    for name, inner, f in nested:
        is_list = get_origin(unwrap_annotated(f.annotation)) is list
        sub = f"{path}.{name}"
        for m in inner:
            _table(m, f"[[{sub}]]" if is_list else f"[{sub}]", level + 1, out, sub)


def _union_tables(tp: Any, heading: str, key: str, out: list[str], path: str) -> None:
    for m in _variants(tp):
        tag = m.model_fields[key].annotation
        value = get_args(tag)[0] if get_origin(tag) is Literal else "?"
        _table(m, f'{heading} {key} = "{value}"', 3, out, path)


def reference() -> str:
    from agent.config.model import Config

    out = [HEADER]
    for name, f in Config.model_fields.items():
        out.append(f"## {name}\n")
        if f.description:
            out.append(f.description[0].upper() + f.description[1:] + ".\n")
        tp = unwrap_annotated(f.annotation)
        if name == "platforms":
            _union_tables(get_args(tp)[1], "[platforms.<name>]", "kind", out, "platforms.<name>")
        elif name == "profiles":
            _union_tables(get_args(tp)[0], "[[profiles]]", "endpoint", out, name)
        elif name == "camera":
            _union_tables(tp, "[camera]", "driver", out, name)
        elif get_origin(tp) is list:
            _table(unwrap_annotated(get_args(tp)[0]), f"[[{name}]]", 3, out, name)
        else:
            _table(tp, f"[{name}]", 3, out, name)
    return "\n".join(out).rstrip() + "\n"
