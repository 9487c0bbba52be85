"""Logging set-up. Every record passes one filter on its way out: the configured secrets are masked and control
characters are escaped, whatever printed them.

One record, one line: a request_id, a topic or a platform's error message that carries a line break (or a terminal
escape) must never start a line that looks like a record of its own. The message and its arguments are escaped
(``\\n`` is written as ``\\\\n``); a traceback keeps its lines but each one is indented, so a line that starts at
column 0 is always the start of a real record.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

from agent.redact import Redactor

# C0 and C1 controls (\n, \r, ESC, NEL ...), DEL, the Unicode line/paragraph separators and the bidi overrides
CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
TRACEBACK_INDENT = "  "
_DONE = "_edge_agent_safe"  # set on a record once it passed the filter


def _escape_one(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def escape_controls(text: str) -> str:
    """`text` on one line: every control character written as an escape (``\\n``, ``\\x1b``, ``\\u2028``)."""
    return CONTROL_CHARS.sub(_escape_one, text)


def has_control_chars(text: str) -> bool:
    return CONTROL_CHARS.search(text) is not None


def _indented(text: str) -> str:
    return "\n".join(TRACEBACK_INDENT + escape_controls(line) for line in text.split("\n"))


class SafeLogRecords(logging.Filter):
    """Masks the secrets (the one redactor, agent/redact.py) and escapes control characters in every record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets)
        self.redactor = Redactor(self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _DONE, False):  # a record passes each handler: once is enough
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it itself when the handler formats it
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = escape_controls(self.redactor.mask(message)), ()
        if record.exc_text:
            record.exc_text = _indented(self.redactor.mask(record.exc_text))
        if record.stack_info:
            record.stack_info = _indented(self.redactor.mask(record.stack_info))
        setattr(record, _DONE, True)
        return True


def add_secrets(values: Iterable[str]) -> None:
    """After a reload: log lines mask the new secrets too (and keep masking the old ones, which may still pass)."""
    for h in logging.getLogger().handlers:
        for f in h.filters:
            if isinstance(f, SafeLogRecords):
                f.secrets = [*f.secrets, *values]
                f.redactor = Redactor(f.secrets)


RedactSecrets = SafeLogRecords  # its name before it escaped control characters too


# syslog priorities journald reads from a "<N>" line prefix (sd-daemon(3)): journalctl -p warning shows only those
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    """Every line of a record (a traceback's too) carries the record's priority prefix, so journald files the whole
    record under one priority and adds its own timestamp."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 7 if record.levelno < logging.INFO else 4)
        return "\n".join(f"<{prio}>{line}" for line in super().format(record).split("\n"))


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    if to_journal():
        handler.setFormatter(JournalFormatter())
    else:
        fmt = (
            "%(levelname)s %(name)s: %(message)s"
            if _under_systemd()
            else "%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(SafeLogRecords(secrets))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def to_journal() -> bool:
    """stderr is journald's stream (JOURNAL_STREAM names its device and inode; a redirected stderr is not)."""
    import os

    want = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return bool(want) and want == f"{st.st_dev}:{st.st_ino}"


def _under_systemd() -> bool:
    import os

    return to_journal() or "INVOCATION_ID" in os.environ
