"""The one secret redactor: API keys, MQTT passwords and tokens never leave the device, whole or in part.

Every text that is logged, stored (job errors, history notes, job.json), published (MQTT) or served (HTTP) passes
``Redactor.mask`` with the secrets of the current config. A secret is masked whole, and so is any run of
``RUN`` (8) or more of its characters, as it is, as it appears inside a JSON string (escaped quotes or
backslashes) and percent-encoded in a URL: a platform that echoes 26 of 27 key characters leaks nothing.

Mask BEFORE cutting a text short: a cut can leave the first part of a secret that masking would no longer
recognise as a run of it. ``bound`` cuts a stored text to a limit; ``Redactor.bounded`` does both in the right order
and in time proportional to the limit, not to the text (a 6 MB platform message costs what 600 bytes do).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
RUN = 8  # this many characters of a secret in a row are a leak


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for s in secrets:
            if not s:
                continue
            forms.add(s)
            forms.add(json.dumps(s)[1:-1])  # as it appears inside a JSON string
            forms.add(quote(s, safe=""))  # as it appears in a URL (a Location header, a query string)
        self._forms = sorted(forms, key=len, reverse=True)
        self._runs = sorted({f[i : i + RUN] for f in forms if len(f) >= RUN for i in range(len(f) - RUN + 1)})
        self._longest = max((len(f) for f in forms), default=0)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def mask(self, text: str) -> str:
        for s in self._forms:
            if s in text:
                text = text.replace(s, MASK)
        return self._mask_runs(text) if self._runs else text

    def _mask_runs(self, text: str) -> str:
        """Every stretch of ``text`` covered by RUN-character windows of a secret becomes one MASK."""
        spans: list[tuple[int, int]] = []
        for w in self._runs:  # str.find is a fast C search; a handful of windows per secret
            at = text.find(w)
            while at != -1:
                spans.append((at, at + RUN))
                at = text.find(w, at + 1)
        if not spans:
            return text
        spans.sort()
        out, pos = [], 0
        start, end = spans[0]
        for s, e in spans[1:]:
            if s <= end:  # overlapping or touching windows: one longer run
                end = max(end, e)
                continue
            out += [text[pos:start], MASK]
            pos, (start, end) = end, (s, e)
        out += [text[pos:start], MASK, text[end:]]
        return "".join(out)

    def mask_opt(self, text: str | None) -> str | None:
        return None if text is None else self.mask(text)

    def bounded(self, text: str, limit: int) -> str:
        """``text`` masked, then cut to ``limit`` characters by ``bound``. Only the first ``limit`` characters and a
        margin longer than any secret are masked: whatever lies beyond is cut anyway."""
        margin = self._longest + RUN
        head = text if len(text) <= limit + margin else text[: limit + margin]
        masked = self.mask(head)
        cut_off = len(text) - len(head)  # characters never looked at, all of them beyond the limit
        return bound(masked, limit, extra=cut_off)

    def __call__(self, text: str) -> str:
        return self.mask(text)


def bound(text: str, limit: int, *, extra: int = 0) -> str:
    """A stored platform text cut to at most ``limit`` characters, saying how much was left out (``extra``: more
    characters already dropped before this call). Never cuts through a MASK. Mask BEFORE calling this."""
    if len(text) <= limit and not extra:
        return text
    if len(text) <= limit:
        return f"{text}… [{extra} more characters]"
    cut = limit
    start = text.rfind(MASK, max(0, limit - len(MASK) + 1), limit + len(MASK) - 1)
    if start != -1 and start < limit < start + len(MASK):
        cut = start  # the mask straddles the limit: cut before it, not through it
    return f"{text[:cut]}… [{len(text) - cut + extra} more characters]"
