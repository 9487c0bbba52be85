"""One HTTP session per platform: a keep-alive ``httpx.Client`` with the key, the timeouts and the classification.

The API key is attached by an ``httpx.Auth`` that only sends it to the platform's own origin (httpx itself strips it
when a redirect leaves the origin). Connections go through ``transport.py``: only to addresses the platform's
``TargetPolicy`` allows (targets.py: no loopback, private, link-local or metadata address except the platform's
own), and every socket call ends by the request's total deadline. Bodies are read with the decoded size bounded as
they stream (bodies.py). Every platform text a message quotes is masked of the key BEFORE it is cut short.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from pydantic import SecretStr

from agent import __version__
from agent.jsonutil import loads_or_none
from agent.platforms import comfy
from agent.platforms.base import PlatformSettings
from agent.platforms.bodies import ACCEPT_ENCODING, EncodingError, read_capped
from agent.platforms.errors import (
    BODY_PREVIEW_CHARS,
    MESSAGE_CHARS,
    PermanentError,
    PlatformError,
    TransientError,
    error_for_exception,
    error_for_status,
    one_line,
    parse_retry_after,
)
from agent.platforms.replies import Reply, error_message_from
from agent.platforms.targets import TargetPolicy
from agent.platforms.transport import GuardedTransport, deadline_scope
from agent.redact import Redactor

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = f"edge-agent/{__version__}"
MAX_REPLY_BYTES = 8_000_000  # an API answer (decoded) is small JSON; a bigger one is a broken (or hostile) server
ERROR_BODY_BYTES = 64 * 1024  # how much of an error answer is read to quote from it
MAX_REDIRECTS = 5  # a signed link redirects once or twice (to a CDN); a loop is a broken link, not a retry

Origin = tuple[str, str, int | None]


def origin_of(url: httpx.URL) -> Origin:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host, port)


class BearerForOrigin(httpx.Auth):
    """``Authorization: Bearer <key>`` on requests to the platform's origin only; never in a repr."""

    def __init__(self, key: SecretStr | None, origin: Origin) -> None:
        self._key = key
        self._origin = origin

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._key is not None and origin_of(request.url) == self._origin:
            request.headers["Authorization"] = f"Bearer {self._key.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "<bearer auth>"


class PlatformHTTP:
    """The session of one platform. Thread-safe (httpx.Client is); ``close()`` when done."""

    server_date: str | None = None  # the Date header of the last probe (doctor's clock check)

    def __init__(self, cfg: PlatformSettings, api_key: SecretStr | None, *, user_agent: str | None = None) -> None:
        self.base_url = cfg.base_url.rstrip("/")
        base = httpx.URL(self.base_url)
        self.host = base.host if base.port is None else f"{base.host}:{base.port}"
        self.max_download_mb = cfg.max_download_mb
        self.download_deadline_s = cfg.download_deadline_s
        self.max_downloads_per_host = cfg.max_downloads_per_host
        self.max_outputs = cfg.max_outputs
        # An API call gets connect + twice the read timeout in all (a sync edit may think for a whole read timeout
        # before it answers): a reply dripping a byte at a time cannot hold a job thread for longer.
        self.api_budget_s = cfg.connect_timeout_s + 2 * cfg.read_timeout_s
        self._redactor = Redactor([api_key.get_secret_value()] if api_key is not None else [])
        self._origin = origin_of(base)
        own_port = self._origin[2] or 80
        self.policy = TargetPolicy(base.host, own_port, cfg.allow_private_hosts)
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=4, keepalive_expiry=30.0)
        self._client = httpx.Client(
            auth=BearerForOrigin(api_key, self._origin),
            timeout=httpx.Timeout(
                connect=cfg.connect_timeout_s,
                read=cfg.read_timeout_s,
                write=cfg.read_timeout_s,
                pool=cfg.connect_timeout_s,
            ),
            transport=GuardedTransport(self.policy, limits),
            headers={
                "User-Agent": user_agent or DEFAULT_USER_AGENT,
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            follow_redirects=False,  # API calls never follow; downloads opt in per request
            max_redirects=MAX_REDIRECTS,
        )

    def __repr__(self) -> str:
        return f"PlatformHTTP({self.base_url!r})"

    def is_own(self, url: httpx.URL) -> bool:
        """Whether ``url`` is on the platform's own origin (where the key goes)."""
        return origin_of(url) == self._origin

    # ---------------------------------------------------------------- URLs

    def url(self, path: str) -> str:
        """``base_url`` joined with an API path, whatever slashes either side has; an absolute URL (an upload target
        of the owner's) as it is (the key goes only to the platform's own origin, see ``BearerForOrigin``)."""
        if re.match(r"^https?://", path, re.IGNORECASE):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def resolve(self, ref: str) -> str:
        """An output reference (absolute, ``/view?...`` or a bare ComfyUI name) as an absolute URL."""
        return comfy.resolve_ref(self.base_url, ref)

    # ---------------------------------------------------------------- platform texts

    def mask(self, text: str) -> str:
        """Belt and braces: the key never leaves in a message, whole or any 8 characters of it."""
        return self._redactor.mask(text)

    def contains_key(self, text: str) -> bool:
        return self._redactor.mask(text) != text

    def text(self, value: str, limit: int) -> str:
        """A platform text to keep (a failure message, a warning, a title): masked, then cut to ``limit``."""
        return self._redactor.bounded(value, limit)

    def preview(self, raw: bytes | str, limit: int = BODY_PREVIEW_CHARS) -> str:
        """The start of a body for an error message: one printable line, masked, then cut to ``limit``. Only a
        window of the body is looked at (what lies beyond it would be cut anyway)."""
        window = raw[: 4 * limit + 1024]
        text = window.decode("utf-8", "replace") if isinstance(window, bytes) else window
        return self._redactor.bounded(one_line(text), limit)

    def masked(self, err: PlatformError) -> PlatformError:
        """``err`` with its message masked and bounded (MESSAGE_CHARS): what a job may record."""
        message = self.text(err.message, MESSAGE_CHARS)
        return err if message == err.message else err.with_message(message)

    def error_from_response(self, resp: httpx.Response, body: bytes) -> PlatformError | None:
        """The classified error for an answer (None for a success)."""
        if resp.status_code < 400:
            return None
        words = error_message_from(loads_or_none(body))
        if words is not None:
            words = self.preview(words, 300)
        elif body.strip():
            words = self.preview(body)
        else:
            words = "(empty body)"
        message = f"HTTP {resp.status_code} from {self.host}: {words}"
        err = error_for_status(
            resp.status_code, message, retry_after=parse_retry_after(resp.headers.get("Retry-After"))
        )
        assert err is not None
        return self.masked(err)

    def no_answer(self, exc: httpx.HTTPError, host: str, what: str, at: float, budget_s: float) -> PlatformError:
        """The error for a request that got no (whole) answer: past its deadline ``at``, or the classified failure."""
        if isinstance(exc, httpx.TimeoutException) and time.monotonic() >= at - 0.05:
            return TransientError(f"{what} from {host} took longer than {budget_s:g} s; gave up", kind="timeout")
        if isinstance(exc, httpx.TooManyRedirects):
            return PermanentError(f"{what} from {host}: more than {MAX_REDIRECTS} redirects", kind="output")
        return self.masked(error_for_exception(exc, host))

    # ---------------------------------------------------------------- requests

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        """One API call; returns the parsed JSON of a success or raises the classified error."""
        budget = self.api_budget_s
        at = time.monotonic() + budget
        try:
            with deadline_scope(at), self._client.stream(method, self.url(path), **kwargs) as resp:
                body = read_capped(resp, MAX_REPLY_BYTES)
        except httpx.HTTPError as e:
            raise self.no_answer(e, self.host, "the answer", at, budget) from None
        except EncodingError as e:
            raise PermanentError(f"HTTP {resp.status_code} from {self.host}: {e}", kind="protocol") from None
        if body is None:
            raise PermanentError(
                f"HTTP {resp.status_code} from {self.host}: reply larger than {MAX_REPLY_BYTES // 1_000_000} MB",
                status=resp.status_code,
                kind="protocol",
            )
        err = self.error_from_response(resp, body)
        if err is not None:
            log.debug("%s %s -> %s", method, path, err.message)
            raise err
        if resp.is_redirect:  # API calls never follow: a moved platform is a config problem, not a retry
            where = self.preview(resp.headers.get("Location", "?"), 200)
            raise PermanentError(
                f"HTTP {resp.status_code} from {self.host}: redirected to {where}; check base_url",
                status=resp.status_code,
                kind="http",
            )
        if not body.strip():
            return Reply(resp.status_code, None)
        parsed = loads_or_none(body)  # None for anything not strict JSON, a 200,000-deep nesting included
        if parsed is None:
            raise TransientError(
                f"HTTP {resp.status_code} from {self.host}: not JSON: {self.preview(body)!r}",
                status=resp.status_code,
                kind="protocol",
            )
        return Reply(resp.status_code, parsed)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.request("POST", path, **kwargs)

    def probe(self, path: str) -> None:
        """Any HTTP answer means reachable; no answer is a TransientError. The body is never read."""
        budget = self.api_budget_s
        at = time.monotonic() + budget
        try:
            with deadline_scope(at), self._client.stream("GET", self.url(path)) as resp:
                self.server_date = resp.headers.get("Date")
        except httpx.HTTPError as e:
            raise self.no_answer(e, self.host, "the answer", at, budget) from None

    @contextmanager
    def stream_output(self, url: str) -> Iterator[httpx.Response]:
        """GET an output link, following redirects (signed links often redirect to a CDN), as a stream. Run it
        inside ``deadline_scope``: each hop is checked (targets.py) and every socket call ends by the deadline."""
        with self._client.stream("GET", url, follow_redirects=True, headers={"Accept": "*/*"}) as resp:
            yield resp

    def close(self) -> None:
        self._client.close()
