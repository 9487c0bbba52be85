"""Logging set-up. Every record passes a filter that masks the configured secrets, whatever printed them."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from agent.redact import Redactor


class RedactSecrets(logging.Filter):
    """Masks the secrets in every record (message and traceback) with the one redactor (agent/redact.py)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.redactor = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor:
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.redactor.mask(record.getMessage()), ()
        if record.exc_text:
            record.exc_text = self.redactor.mask(record.exc_text)
        return True


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    fmt = (
        "%(levelname)s %(name)s: %(message)s" if _under_systemd() else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(RedactSecrets(secrets))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _under_systemd() -> bool:
    import os

    return "JOURNAL_STREAM" in os.environ or "INVOCATION_ID" in os.environ
