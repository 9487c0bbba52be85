"""The page's texts: one JSON catalogue per language (agent/kiosk/i18n/<lang>.json), operator overrides from
`[display] texts` laid over them. The catalogues are read once; a missing key in one language falls back to
English, so a half-translated override never shows a bare key to a guest."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("zh-CN", "en")
FALLBACK = "en"


@cache
def catalogue(lang: str) -> dict[str, str]:
    data = resources.files("agent.kiosk").joinpath("i18n", f"{lang}.json").read_text(encoding="utf-8")
    return dict(json.loads(data))


def text_keys() -> frozenset[str]:
    return frozenset(catalogue(FALLBACK))


def texts(overrides: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, str]]:
    """Every language's texts, English filling any gap, then the operator's overrides."""
    base = catalogue(FALLBACK)
    out: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        out[lang] = {**base, **catalogue(lang), **((overrides or {}).get(lang) or {})}
    return out


def check_overrides(value: Any) -> dict[str, dict[str, str]]:
    """`[display] texts`: {language: {key: text}} with known languages and keys (a typo names the key)."""
    if not isinstance(value, dict):
        raise ValueError('must be a table of languages, e.g. texts.en = { "attract.title" = "..." }')
    keys = text_keys()
    for lang, table in value.items():
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r} (languages: {', '.join(LANGUAGES)})")
        if not isinstance(table, dict):
            raise ValueError(f"texts.{lang} must be a table of text keys")
        for key, text in table.items():
            if key not in keys:
                near = sorted(k for k in keys if k.split(".")[0] == str(key).split(".")[0])
                hint = f" (keys in that group: {', '.join(near)})" if near else ""
                raise ValueError(f"unknown text key {key!r} in texts.{lang}{hint}")
            if not isinstance(text, str):
                raise ValueError(f"texts.{lang}.{key} must be a string")
    return value
