"""One HTTP session per platform: a keep-alive ``httpx.Client`` with the key, the timeouts and the classification.

The API key is attached by an ``httpx.Auth`` that only sends it to the platform's own origin (httpx itself strips it
when a redirect leaves the origin). Requests to any other host (output links, each redirect hop) may not reach this
device's loopback or link-local addresses. Every message built here is masked of the key before it is cut short
or raised.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from pydantic import SecretStr

from agent import __version__
from agent.jsonutil import loads_or_none
from agent.platforms import comfy
from agent.platforms.base import PlatformSettings
from agent.platforms.errors import (
    PermanentError,
    PlatformError,
    TransientError,
    error_for_exception,
    error_for_status,
    parse_retry_after,
    sanitise,
)
from agent.platforms.replies import Reply, error_message_from
from agent.redact import Redactor

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = f"edge-agent/{__version__}"
MAX_REPLY_BYTES = 8_000_000  # an API answer is small JSON; a bigger one is a broken (or hostile) server

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


def refuse_local_target(url: httpx.URL) -> None:
    """PermanentError when ``url``'s host resolves to a loopback, link-local, unspecified or multicast address (the
    agent's own API, a cloud metadata service): an output URL is the platform's word, not ours."""
    host = url.host
    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return  # unresolvable: the request itself fails with a network error
    for a in addrs:
        ip = ipaddress.ip_address(str(a).split("%")[0])
        if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
            raise PermanentError(f"output link points at a local address ({host} -> {ip}); refused", kind="output")


class PlatformHTTP:
    """The session of one platform. Thread-safe (httpx.Client is); ``close()`` when done."""

    server_date: str | None = None  # the Date header of the last probe (doctor's clock check)

    def __init__(self, cfg: PlatformSettings, api_key: SecretStr | None, *, user_agent: str | None = None) -> None:
        self.base_url = cfg.base_url.rstrip("/")
        base = httpx.URL(self.base_url)
        self.host = base.host if base.port is None else f"{base.host}:{base.port}"
        self.max_download_mb = cfg.max_download_mb
        self._redactor = Redactor([api_key.get_secret_value()] if api_key is not None else [])
        self._origin = origin_of(base)
        self._client = httpx.Client(
            auth=BearerForOrigin(api_key, self._origin),
            timeout=httpx.Timeout(
                connect=cfg.connect_timeout_s,
                read=cfg.read_timeout_s,
                write=cfg.read_timeout_s,
                pool=cfg.connect_timeout_s,
            ),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4, keepalive_expiry=30.0),
            headers={"User-Agent": user_agent or DEFAULT_USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,  # API calls never follow; downloads opt in per request
            event_hooks={"request": [self._check_target]},
        )

    def _check_target(self, request: httpx.Request) -> None:
        if not self.is_own(request.url):
            refuse_local_target(request.url)

    def __repr__(self) -> str:
        return f"PlatformHTTP({self.base_url!r})"

    def is_own(self, url: httpx.URL) -> bool:
        """Whether ``url`` is on the platform's own origin (where the key goes)."""
        return origin_of(url) == self._origin

    # ---------------------------------------------------------------- URLs

    def url(self, path: str) -> str:
        """``base_url`` joined with an API path, whatever slashes either side has."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def resolve(self, ref: str) -> str:
        """An output reference (absolute, ``/view?...`` or a bare ComfyUI name) as an absolute URL."""
        return comfy.resolve_ref(self.base_url, ref)

    # ---------------------------------------------------------------- errors

    def mask(self, text: str) -> str:
        """Belt and braces: the key never leaves in a message, even if a server echoes it back."""
        return self._redactor.mask(text)

    def masked(self, err: PlatformError) -> PlatformError:
        masked = self.mask(err.message)
        return err if masked == err.message else err.with_message(masked)

    def error_from_response(self, resp: httpx.Response, body: bytes) -> PlatformError | None:
        """The classified error for an answer (None for a success)."""
        if resp.status_code < 400:
            return None
        words = error_message_from(loads_or_none(body))
        if words is not None:  # mask the key before cutting, or a cut key would leak its first part
            words = sanitise(self.mask(words), 300)
        elif body.strip():
            words = sanitise(self.mask(body.decode("utf-8", "replace")))
        else:
            words = "(empty body)"
        message = f"HTTP {resp.status_code} from {self.host}: {words}"
        err = error_for_status(
            resp.status_code, message, retry_after=parse_retry_after(resp.headers.get("Retry-After"))
        )
        assert err is not None
        return self.masked(err)

    # ---------------------------------------------------------------- requests

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        """One API call; returns the parsed JSON of a success or raises the classified error."""
        try:
            with self._client.stream(method, self.url(path), **kwargs) as resp:
                body = _read_capped(resp, MAX_REPLY_BYTES)
        except httpx.HTTPError as e:
            raise self.masked(error_for_exception(e, self.host)) from None
        if body is None:
            raise self.masked(
                PermanentError(
                    f"HTTP {resp.status_code} from {self.host}: reply larger than {MAX_REPLY_BYTES // 1_000_000} MB",
                    status=resp.status_code,
                    kind="protocol",
                )
            )
        err = self.error_from_response(resp, body)
        if err is not None:
            log.debug("%s %s -> %s", method, path, err.message)
            raise err
        if resp.is_redirect:  # API calls never follow: a moved platform is a config problem, not a retry
            where = sanitise(self.mask(resp.headers.get("Location", "?")), 200)
            raise self.masked(
                PermanentError(
                    f"HTTP {resp.status_code} from {self.host}: redirected to {where}; check base_url",
                    status=resp.status_code,
                    kind="http",
                )
            )
        if not body.strip():
            return Reply(resp.status_code, None)
        parsed = loads_or_none(body)
        if parsed is None:
            preview = sanitise(self.mask(body.decode("utf-8", "replace")))
            raise self.masked(
                TransientError(
                    f"HTTP {resp.status_code} from {self.host}: not JSON: {preview!r}",
                    status=resp.status_code,
                    kind="protocol",
                )
            )
        return Reply(resp.status_code, parsed)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.request("POST", path, **kwargs)

    def probe(self, path: str) -> None:
        """Any HTTP answer means reachable; no answer is a TransientError."""
        try:
            resp = self._client.get(self.url(path))
        except httpx.HTTPError as e:
            raise self.masked(error_for_exception(e, self.host)) from None
        self.server_date = resp.headers.get("Date")

    @contextmanager
    def stream_output(self, url: str) -> Iterator[httpx.Response]:
        """GET an output link, following redirects (signed links often redirect to a CDN), as a stream."""
        with self._client.stream("GET", url, follow_redirects=True, headers={"Accept": "*/*"}) as resp:
            yield resp

    def close(self) -> None:
        self._client.close()


def _read_capped(resp: httpx.Response, cap: int) -> bytes | None:
    """The body, or None once it passes `cap` bytes (the rest is never read into memory)."""
    chunks, size = [], 0
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
