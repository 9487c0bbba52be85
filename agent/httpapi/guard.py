"""What a request must show before it reaches a route: unambiguous framing, a Host and Origin that are this
device, and for anything that changes state a same-origin proof that a cross-site page cannot forge.

The proof: the header ``X-Edge-Agent: 1`` and a JSON body sent as ``Content-Type: application/json`` (an empty
body too). A page on another origin can send neither without a CORS preflight, and the agent never grants one;
HTML forms, ``<img>``, ``navigator.sendBeacon`` and no-cors ``fetch`` can only send "simple" requests. ``Origin``,
when present, must be exactly the agent's own (the ``http://host:port`` it is served on, or ``http.public_url``'s),
never ``null``, ``file://`` or another IP; ``Sec-Fetch-Site``, when present, must be ``same-origin`` or ``none``.
"""

from __future__ import annotations

import ipaddress
import re
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

from agent.jsonutil import JSONError, loads_strict

PROOF_HEADER = "X-Edge-Agent"
PROOF_VALUE = "1"
SAME_ORIGIN_PROOF = {PROOF_HEADER: PROOF_VALUE}  # what the CLI, the demo and the kiosk page send
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BODY = 64 * 1024
MAX_BODY_DEPTH = 16  # our bodies nest 2 levels; deeper is refused long before any recursion limit
_LENGTH = re.compile(r"[0-9]{1,18}")
_DEFAULT_PORT = {"http": 80, "https": 443}
_FETCH_SITES_OK = frozenset({"same-origin", "none"})


class Refused(Exception):
    """The request is answered with `status` and an error body; nothing else happens."""

    def __init__(self, status: int, code: str, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.close = status, code, message, close


def _host_port(host_header: str) -> tuple[str, int] | None:
    """(hostname, port) of a Host header; None when it is not a plain host[:port]."""
    if any(c in host_header for c in "/@?#\\ \t"):
        return None
    try:
        u = urlsplit(f"//{host_header}")
        return ((u.hostname or "").lower(), u.port or 80)
    except ValueError:
        return None


def _origin(origin: str) -> tuple[str, str, int] | None:
    """(scheme, hostname, port) of a serialized origin; None for `null`, `file://` or anything with a path."""
    try:
        u = urlsplit(origin)
        port = u.port
    except ValueError:
        return None
    if u.scheme not in _DEFAULT_PORT or not u.hostname or u.path or u.query or u.fragment or "@" in u.netloc:
        return None
    return (u.scheme, u.hostname.lower(), port or _DEFAULT_PORT[u.scheme])


class Origins:
    """Who this agent is to a browser: the names it may be called by (anything else is DNS rebinding), the port
    it is served on, and `http.public_url` (a reverse proxy or port forward in front of it)."""

    def __init__(self, names: set[str], port: int, public_url: str | None) -> None:
        self.names = {n.lower() for n in names if n}
        self.port = port
        self.public = _origin(public_url.rstrip("/")) if public_url else None
        if self.public:
            self.names.add(self.public[1])

    def known_host(self, host_header: str | None) -> bool:
        if not host_header:
            return True  # HTTP/1.0 without Host: not a browser
        hp = _host_port(host_header)
        if hp is None:
            return False
        try:
            ipaddress.ip_address(hp[0])
            return True  # an IP literal cannot be rebound
        except ValueError:
            return hp[0] in self.names

    def is_own(self, origin: str, host_header: str | None) -> bool:
        """`origin` is the page this request was sent to: http://<the Host it names>, on our port, or public_url's."""
        o = _origin(origin)
        if o is None:
            return False
        if o == self.public:
            return True
        if o[0] != "http" or not host_header or not self.known_host(host_header):
            return False
        return (o[1], o[2]) == _host_port(host_header) and o[2] == self.port


def body_length(method: str, headers: Message) -> int:
    """The body's length from its framing headers, or Refused (closing: the bytes that follow cannot be trusted
    to be the next request). One Content-Length of plain digits; no Transfer-Encoding; no body on a GET."""
    if headers.get_all("Transfer-Encoding"):
        raise Refused(411, "bad_request", "chunked bodies are not accepted: send Content-Length", close=True)
    lengths = headers.get_all("Content-Length") or []
    if len(lengths) > 1:
        raise Refused(400, "bad_request", "more than one Content-Length", close=True)
    if not lengths:
        return 0
    value = lengths[0].strip(" \t")
    if not _LENGTH.fullmatch(value):
        raise Refused(400, "bad_request", "bad Content-Length", close=True)
    n = int(value)
    if n and method not in STATE_CHANGING:
        raise Refused(400, "bad_request", f"a {method} request carries no body", close=True)
    if n > MAX_BODY:
        raise Refused(413, "bad_request", f"body larger than {MAX_BODY} bytes", close=True)
    return n


def check_host_and_origin(origins: Origins, headers: Message) -> None:
    """Every request: a Host that is this device (DNS rebinding) and, if the browser said, our own Origin."""
    host = headers.get("Host")
    origin = headers.get_all("Origin") or []
    if not origins.known_host(host) or len(origin) > 1 or (origin and not origins.is_own(origin[0], host)):
        raise Refused(403, "forbidden", "unexpected Host or Origin (cross-site or DNS-rebinding request)", close=True)


def check_same_origin_proof(headers: Message) -> None:
    """A state-changing request: Sec-Fetch-Site (when sent) same-origin or none, the proof header, a JSON type."""
    site = headers.get_all("Sec-Fetch-Site") or []
    if any(s.strip().lower() not in _FETCH_SITES_OK for s in site):
        raise Refused(403, "forbidden", "cross-site request (Sec-Fetch-Site)", close=True)
    if [v.strip() for v in headers.get_all(PROOF_HEADER) or []] != [PROOF_VALUE]:
        raise Refused(
            403,
            "forbidden",
            f"state-changing requests need the header {PROOF_HEADER}: {PROOF_VALUE} (same-origin proof)",
            close=True,
        )
    ctypes = headers.get_all("Content-Type") or []
    if len(ctypes) != 1 or ctypes[0].split(";")[0].strip().lower() != "application/json":
        raise Refused(415, "bad_request", "send the body (even an empty one) as Content-Type: application/json")


def _within_depth(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict | list):
            if depth > limit:
                return False
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return True


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request's JSON object (an empty body is {}), or Refused with a message the sender can act on."""
    if not raw.strip():
        return {}
    try:
        body = loads_strict(raw)
    except JSONError as e:
        why = str(e)
        raise Refused(
            400, "bad_request", "body is not valid JSON" + ("" if why == "not valid JSON" else f": {why}")
        ) from None
    if not isinstance(body, dict):
        raise Refused(400, "bad_request", "body must be a JSON object")
    if not _within_depth(body, MAX_BODY_DEPTH):
        raise Refused(400, "bad_request", f"body nests deeper than {MAX_BODY_DEPTH} levels")
    return body
