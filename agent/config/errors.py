"""How config problems are worded: ``PATH: key.path: message``, one line each, all of them at once.

pydantic's errors are turned into words a technician can act on: the key path as written in the file (tags that
pydantic adds for tagged unions dropped), "unknown key" with a did-you-mean hint, or the endpoints that do take a
key a profile's endpoint does not.
"""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from agent.platforms.modes import MODES, ProfileBase
from agent.schema import is_model, unwrap_annotated

_TAG_KEYS = ("driver", "kind", "endpoint")  # the discriminators of cameras, platforms and profiles


@dataclass
class ConfigIssue:
    key: str
    message: str


@dataclass
class ConfigError(Exception):
    path: Path
    issues: list[ConfigIssue] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{self.path}: {i.key}: {i.message}" if i.key else f"{self.path}: {i.message}" for i in self.issues]

    def __str__(self) -> str:
        return "\n".join(self.lines())


# the patterns a technician meets, in words (a regex says little to most people)
_PATTERN_WORDS = {
    r"^[a-z0-9_-]+$": "use only lower-case letters, digits, - and _ (no spaces)",
    r"^[A-Za-z0-9_.-]+$": "use only letters, digits, _ . and - (no spaces)",
}


def did_you_mean(name: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ""."""
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --------------------------------------------------------------------------------------------- locations


def key_of(raw: Any, loc: tuple[Any, ...]) -> tuple[str, Any]:
    """A pydantic error location as ``a.b[0].c`` (union tags not in the data dropped), and the value there."""
    parts: list[str] = []
    cur = raw
    for el in loc:
        if isinstance(el, int):
            parts.append(f"[{el}]")
            cur = cur[el] if isinstance(cur, list) and el < len(cur) else None
        elif isinstance(cur, dict) and el in cur:
            parts.append(("." if parts else "") + str(el))
            cur = cur[el]
        elif isinstance(cur, dict) and str(el).startswith("function-"):
            continue  # a validator wrapper
        elif isinstance(cur, dict) and any(el == cur.get(k) for k in _TAG_KEYS):
            continue  # the discriminator value pydantic adds for tagged unions
        else:
            parts.append(("." if parts else "") + str(el))
            cur = None
    return "".join(parts), cur


def _tags(model: type[BaseModel]) -> set[Any]:
    return {
        v
        for k, f in model.model_fields.items()
        if k in _TAG_KEYS and get_origin(unwrap_annotated(f.annotation)) is Literal
        for v in get_args(unwrap_annotated(f.annotation))
    }


def _step(tp: Any, el: Any) -> Any:
    tp = unwrap_annotated(tp)
    origin = get_origin(tp)
    if isinstance(el, str) and el.startswith("function-"):
        return tp
    if origin in (Union, types.UnionType):
        models = [m for m in map(unwrap_annotated, get_args(tp)) if is_model(m)]
        tagged = [m for m in models if el in _tags(m)]
        if tagged:
            return tagged[0]
        return _step(models[0], el) if len(models) == 1 else None
    if origin is list:
        return get_args(tp)[0] if isinstance(el, int) else None
    if origin is dict:
        return get_args(tp)[1]
    if is_model(tp):
        f = tp.model_fields.get(el)
        return f.annotation if f is not None else None
    return None


def model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose table a location points into (for hints), or None."""
    tp: Any = root
    for el in loc:
        tp = _step(tp, el)
        if tp is None:
            return None
    tp = unwrap_annotated(tp)
    if get_origin(tp) in (Union, types.UnionType):
        models = [m for m in map(unwrap_annotated, get_args(tp)) if is_model(m)]
        tp = models[0] if len(models) == 1 else None
    return tp if is_model(tp) else None


def _endpoint_of(model: type[BaseModel] | None) -> str | None:
    if model is None or not issubclass(model, ProfileBase):
        return None
    return next((e for e, m in MODES.items() if m.profile_model is model), None)


# --------------------------------------------------------------------------------------------- wording

_SIMPLE = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a table",
    "list_type": "expected a list",
    "model_type": "expected a table",
}
_BOUNDS = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}


def _unknown_key(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    name = str(loc[-1])
    model = model_at(root, loc[:-1])
    if model is None:
        return "unknown key"
    endpoint = _endpoint_of(model)
    if endpoint is not None:
        takers = [e for e, m in MODES.items() if name in m.profile_model.model_fields]
        if takers:
            verb = "takes" if len(takers) == 1 else "take"
            return f"unknown key for endpoint {endpoint} (only {', '.join(takers)} {verb} it)"
    fields = [n for n, f in model.model_fields.items() if not f.exclude]
    return "unknown key" + did_you_mean(name, fields)


def friendly(err: Any, raw: dict[str, Any], root: type[BaseModel]) -> ConfigIssue:
    """One pydantic error (an ``ErrorDetails``) as a ConfigIssue in a technician's words."""
    loc = tuple(err["loc"])
    key, value = key_of(raw, loc)
    typ = err["type"]
    msg = err["msg"]
    ctx = err.get("ctx") or {}
    if typ == "extra_forbidden":
        return ConfigIssue(key, _unknown_key(root, loc))
    if typ == "missing":
        endpoint = _endpoint_of(model_at(root, loc[:-1]))
        return ConfigIssue(key, "missing required key" + (f" for endpoint {endpoint}" if endpoint else ""))
    if typ in ("union_tag_invalid", "union_tag_not_found"):
        field_name = str(ctx.get("discriminator", "")).strip("'")
        key = f"{key}.{field_name}" if field_name else key
        if typ == "union_tag_not_found":
            return ConfigIssue(key, "missing required key")
        return ConfigIssue(key, f"unknown value {ctx.get('tag', '')!r}; expected one of {ctx.get('expected_tags', '')}")
    if typ == "literal_error":
        return ConfigIssue(key, f"got {value!r}; expected {ctx.get('expected', '')}")
    if typ == "string_pattern_mismatch":
        said = _PATTERN_WORDS.get(str(ctx.get("pattern")))
        return ConfigIssue(key, f"{value!r}: {said}" if said else f"{value!r} does not match {ctx.get('pattern')}")
    if typ == "string_too_short":
        return ConfigIssue(key, "must not be empty")
    if typ == "too_short":
        n = ctx.get("min_length", 1)
        return ConfigIssue(key, f"needs at least {n} entr{'y' if n == 1 else 'ies'}")
    if typ in _SIMPLE:
        return ConfigIssue(key, f"{_SIMPLE[typ]}, got {value!r}")
    if typ in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        return ConfigIssue(key, f"must be {_BOUNDS[typ]} {bound}, got {value!r}")
    if typ == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif value is not None and not isinstance(value, (dict, list)):
        msg = f"{msg} (got {value!r})"
    return ConfigIssue(key, msg)
