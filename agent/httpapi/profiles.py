"""`GET /api/profiles` (the profiles and their choices, for the kiosk's catalogue) and
`GET /api/profiles/<name>/choices/<id>/thumbnail` (a choice's picture).

A thumbnail is only ever the file the config names for that choice: the URL carries two ids that are looked up
in the config, never a path. The file is read whole up to a cap, and served only when its first bytes say it is
an image (PNG, JPEG, WebP or GIF), with that type: a text file named by mistake is refused, not sent.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from agent.choices import list_choices

if TYPE_CHECKING:
    from agent.config import Config
    from agent.httpapi.handler import Handler

THUMBNAIL_MAX_BYTES = 2 * 1_048_576  # a catalogue picture; anything larger is a mistake in the config
ROUTE = re.compile(r"^/api/profiles/([A-Za-z0-9_.-]{1,128})/choices/([A-Za-z0-9_.-]{1,64})/thumbnail$")


def thumbnail_url(profile: str, choice_id: str) -> str:
    return f"/api/profiles/{quote(profile)}/choices/{quote(choice_id)}/thumbnail"


def profiles_view(config: Config) -> dict[str, Any]:
    """{"profiles": [{"name", "label"?, "endpoint", "default", "choices": [{"id", "label", "thumbnail_url"}]}]}"""
    out = []
    for i, p in enumerate(config.profiles):
        entry: dict[str, Any] = {"name": p.name, "endpoint": p.endpoint, "default": i == 0}
        label = p.label
        if label:
            entry["label"] = label
        entry["choices"] = [
            {
                "id": c.id,
                "label": c.title,
                "thumbnail_url": thumbnail_url(p.name, c.id) if getattr(c, "thumbnail", None) else None,
            }
            for c in list_choices(p)
        ]
        out.append(entry)
    return {"profiles": out}


def sniff_image(head: bytes) -> str | None:
    """The image type of a file by its first bytes (None: not an image we serve)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def serve_thumbnail(h: Handler, profile_name: str, choice_id: str) -> None:
    config = h.api.agent.config
    try:
        profile = config.profile(profile_name)
    except KeyError:
        h.send_error_json(404, "not_found", f"no profile {profile_name!r}")
        return
    choice = next((c for c in list_choices(profile) if c.id == choice_id), None)
    if choice is None:
        h.send_error_json(404, "not_found", f"no choice {choice_id!r} in profile {profile_name!r}")
        return
    path = getattr(choice, "thumbnail", None)
    if path is None:
        h.send_error_json(404, "not_found", f"choice {choice_id!r} has no thumbnail")
        return
    try:
        with open(path, "rb") as f:
            data = f.read(THUMBNAIL_MAX_BYTES + 1)
    except OSError:  # the file went away since the config was loaded: say so without its path
        h.send_error_json(404, "not_found", f"the thumbnail of choice {choice_id!r} cannot be read")
        return
    if len(data) > THUMBNAIL_MAX_BYTES:
        h.send_error_json(
            500, "bad_config", f"the thumbnail of choice {choice_id!r} is larger than {THUMBNAIL_MAX_BYTES} bytes"
        )
        return
    ctype = sniff_image(data[:16])
    if ctype is None:
        h.send_error_json(500, "bad_config", f"the thumbnail of choice {choice_id!r} is not a PNG, JPEG, WebP or GIF")
        return
    h.send_response(200)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(data)))
    h.send_header("Cache-Control", "private, max-age=300")
    h.send_header("X-Content-Type-Options", "nosniff")
    h.send_header("Content-Security-Policy", "default-src 'none'")
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(data)
