"""The error classes every platform call raises, and the one table that classifies what went wrong.

=====================================================  ==============================================
what happened                                          raised
=====================================================  ==============================================
connect error, DNS failure, connection dropped         ``TransientError(kind="network")``
connect / read / write / pool timeout                  ``TransientError(kind="timeout")``
HTTP 408, 425, 429, any 5xx                            ``TransientError(kind="http")``, ``retry_after``
                                                       from ``Retry-After`` (seconds or an HTTP-date)
HTTP 401, 403 (from the platform itself)               ``AuthError(kind="auth")``
HTTP 400, 404, 413, 422 and every other 4xx            ``PermanentError(kind="http")``
a 2xx whose body is not JSON                           ``TransientError(kind="protocol")`` (a proxy page)
a 3xx on an API call (never followed)                  ``PermanentError(kind="http")``: fix base_url
a call or download past its total deadline             ``TransientError(kind="timeout")`` ("took longer than")
a download while the host already serves               ``TransientError(kind="busy")``, ``retry_after``
``max_downloads_per_host`` of ours                     (raised at once: a job thread never waits for a slot)
a link or redirect into a local/private/metadata addr  ``PermanentError(kind="output")`` (targets.py)
=====================================================  ==============================================

A download differs in one way: its URL is usually a signed object-store link on another host, so a 401/403/410
there means "the link expired", not "the key is wrong" (``PermanentError(kind="output")``, see download.py).
"""

from __future__ import annotations

import email.utils
import math
import re
import time

import httpx

BODY_PREVIEW_CHARS = 120  # how much of a body an error message quotes
MESSAGE_CHARS = 500  # the longest message a PlatformError carries (a platform's words are quoted, bounded)


class PlatformError(Exception):
    """A request to a platform did not work. `str(e)` is the reason recorded on the job (never holds a secret)."""

    transient: bool = False

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None, kind: str = "error"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status  # HTTP status, when there was one
        self.retry_after = retry_after  # seconds, from Retry-After (transient only)
        self.kind = kind  # network | timeout | http | rejected | protocol | auth | output | error | busy

    def with_message(self, message: str) -> PlatformError:
        """The same error (class, status, kind) with other words, e.g. masked."""
        return type(self)(message, status=self.status, retry_after=self.retry_after, kind=self.kind)


class TransientError(PlatformError):
    """Worth retrying later: connect/read errors, timeouts, 408/425/429/5xx, a platform `rejected`."""

    transient = True


class PermanentError(PlatformError):
    """Retrying will not help: 400/401/403/404/413/422, a task the platform failed, a malformed output."""


class AuthError(PermanentError):
    """401/403: the key is wrong or revoked. Fails the job and raises an alarm."""


# ------------------------------------------------------------------------------------ the classification table

TRANSIENT_STATUSES = frozenset({408, 425, 429})  # and every 5xx
AUTH_STATUSES = frozenset({401, 403})
# 400/404/413/422 and every other 4xx are permanent: the same request would get the same answer.


def error_for_status(status: int, message: str, *, retry_after: float | None = None) -> PlatformError | None:
    """The error an HTTP status stands for, or None for a success (1xx-3xx)."""
    if status < 400:
        return None
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientError(message, status=status, retry_after=retry_after, kind="http")
    if status in AUTH_STATUSES:
        return AuthError(message, status=status, kind="auth")
    return PermanentError(message, status=status, kind="http")


def error_for_exception(exc: httpx.HTTPError, host: str) -> TransientError:
    """A request that got no HTTP answer at all: always worth retrying."""
    what = type(exc).__name__
    detail = str(exc) or what
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return TransientError(f"{host}: no answer ({what})", kind="network")  # never reached: unreachable
    if isinstance(exc, httpx.TimeoutException):  # reached, but the answer took too long
        return TransientError(f"{host}: timed out ({what})", kind="timeout")
    return TransientError(f"{host}: no answer ({what}: {detail})", kind="network")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date; None when absent or garbage."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(secs):
        return None
    return max(0.0, secs)


def one_line(text: str) -> str:
    """A platform text printable and on one line (control characters and runs of whitespace become one space).
    Cutting it short is ``PlatformHTTP.preview``'s job: masked first, then cut."""
    return re.sub(r"[\s\x00-\x1f\x7f]+", " ", text).strip()
