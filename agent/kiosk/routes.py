"""The kiosk's HTTP routes, called from the API handler before its own routes.

`/` (the booth's page) and `/status` (technicians) pass the API's full guard: from another address they need the
token. `/kiosk/<file>` (static files, texts, settings) and `/share/<token>...` (a guest's phone on the booth's
network) only need a Host and Origin that are this device: the token is what a share link proves.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from agent.kiosk import i18n
from agent.kiosk.share import find_shared, output_names, qr_code, share_url, shared_view

if TYPE_CHECKING:
    from agent.httpapi.handler import Handler

_STATIC = re.compile(r"^/kiosk/([a-z0-9][a-z0-9_.-]{0,63}\.(?:html|css|js|svg|png))$")
_SHARE = re.compile(r"^/share/([^/]{1,100})(?:/([A-Za-z0-9_.-]{1,64}))?$")
_TYPES = {
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "json": "application/json",
}
# the page loads only its own files; media may be blob: (none today) and the QR code is an <img> from us
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@cache
def _static_files() -> dict[str, bytes]:
    """The page's files, read once: a fixed set, so no request can grow what is kept (an unknown name is None)."""
    folder = resources.files("agent.kiosk").joinpath("static")
    return {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}


def static_file(name: str) -> bytes | None:
    return _static_files().get(name)


def send_bytes(h: Handler, status: int, ctype: str, data: bytes, cache_s: int = 0) -> None:
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(data)))
    h.send_header("Cache-Control", f"private, max-age={cache_s}" if cache_s else "no-store")
    h.send_header("X-Content-Type-Options", "nosniff")
    h.send_header("Referrer-Policy", "no-referrer")  # a share token never leaks to another site
    if ctype.startswith("text/html"):
        h.send_header("Content-Security-Policy", PAGE_CSP)
        h.send_header("X-Frame-Options", "DENY")
    if h.close_connection:
        h.send_header("Connection", "close")
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(data)


def _host_ok(h: Handler) -> bool:
    from agent.httpapi import guard  # here, not at the top: agent.httpapi's handler imports this module

    try:
        guard.check_host_and_origin(h.api.origins, h.headers)
    except guard.Refused as r:
        h._refuse(r)
        return False
    return True


def handle_get(h: Handler, path: str) -> bool:
    """Answer `path` if it is a kiosk route (True), else leave it to the API (False)."""
    if path in ("/", "/index.html"):
        if h._guard():
            _page(h, "index.html")
        return True
    if path == "/status":
        if h._guard():
            from agent.kiosk.status_page import render

            send_bytes(h, 200, _TYPES["html"], render(h.api.agent, h.api.usage).encode())
        return True
    if path == "/kiosk/settings.json":
        if _host_ok(h):
            send_bytes(h, 200, _TYPES["json"], json.dumps(settings(h.api.agent)).encode())
        return True
    if m := _STATIC.match(path):
        if _host_ok(h):
            data = static_file(m.group(1))
            if data is None:
                h.send_error_json(404, "not_found", f"no file {path}")
            else:
                send_bytes(h, 200, _TYPES[m.group(1).rsplit(".", 1)[1]], data, cache_s=60)
        return True
    if m := _SHARE.match(path):
        if _host_ok(h):
            _share(h, m.group(1), m.group(2))
        return True
    return False


def _page(h: Handler, name: str, status: int = 200) -> None:
    if h.api.agent.config.display.backend == "none" and name == "index.html":
        h.send_error_json(404, "not_found", 'the kiosk page is off ([display] backend = "none")')
        return
    send_bytes(h, status, _TYPES["html"], static_file(name) or b"")


def settings(agent: Any) -> dict[str, Any]:
    """What the page needs to know of the config (no secrets, nothing about platforms)."""
    d = agent.config.display
    return {
        "language": d.language,
        "languages": list(i18n.LANGUAGES),
        "language_switch": d.language_switch,
        "countdown_s": d.countdown_s,
        "idle_timeout_s": d.idle_timeout_s,
        "waiting_timeout_s": d.waiting_timeout_s,
        "result_timeout_s": d.result_timeout_s,
        "attract_slideshow": d.attract_slideshow,
        "attract_slide_s": d.attract_slide_s,
        "attract_count": d.attract_count,
        "consent": d.consent,
        "share": d.share,
        "print": bool(getattr(agent.config.printer, "enabled", False)),
        "texts": i18n.texts(d.texts),
    }


def _share(h: Handler, token: str, sub: str | None) -> None:
    agent = h.api.agent
    d = agent.config.display
    job, why = find_shared(agent.store, token, d.share_expiry_h) if d.share else (None, "unknown")
    if sub is None:  # the page itself; its script asks job.json and says "expired" when that is the answer
        _page(h, "share.html", 200 if job else (410 if why == "expired" else 404))
        return
    if job is None:
        status, msg = (410, "this link has expired") if why == "expired" else (404, "no such share link")
        h.send_error_json(status, why if why == "expired" else "not_found", msg)
        return
    if sub == "job.json":
        view = shared_view(job, token)
        view["expires_at"] = round(job.created_at + d.share_expiry_h * 3600)
        send_bytes(h, 200, _TYPES["json"], json.dumps(view).encode())
    elif sub in ("qr.svg", "qr.png"):
        url = share_url(job, agent.public_base) or ""
        send_bytes(h, 200, _TYPES[sub[3:]], qr_code(url, sub[3:]), cache_s=3600)
    elif sub in output_names(job):
        h._serve_result(job.id, sub)
    else:
        h.send_error_json(404, "not_found", "no such file")
