"""The one secret redactor: API keys, MQTT passwords and tokens never leave the device, whole or in part.

Every text that is logged, stored (job errors, history notes, job.json), published (MQTT) or served (HTTP) passes
``Redactor.mask`` with the secrets of the current config. A secret is masked as it is and as it appears inside a
JSON string (escaped quotes or backslashes), longest first so a secret containing another is masked whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

MASK = "***"


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for s in secrets:
            if not s:
                continue
            forms.add(s)
            forms.add(json.dumps(s)[1:-1])  # as it appears inside a JSON string
        self._forms = sorted(forms, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def mask(self, text: str) -> str:
        for s in self._forms:
            if s in text:
                text = text.replace(s, MASK)
        return text

    def mask_opt(self, text: str | None) -> str | None:
        return None if text is None else self.mask(text)

    def __call__(self, text: str) -> str:
        return self.mask(text)
