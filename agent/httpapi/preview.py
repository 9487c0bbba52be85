"""`GET /api/preview.mjpg` (multipart/x-mixed-replace: every browser shows it in an <img>) and
`GET /api/preview.jpg` (one frame). Both come from the camera service's one preview broadcaster (agent/preview.py):
viewers share one producer. Streams live as long as the viewer stays, so, like event streams, they have a small
pool of their own (the kiosk's own browser keeps a reserved share).
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

from agent.httpapi.limits import Slots

if TYPE_CHECKING:
    from agent.httpapi.handler import Handler

BOUNDARY = "edgeagentframe"
PREVIEW_MAX_STREAMS = 8
PREVIEW_LOCAL_RESERVED = 2
PREVIEW_MAX_PER_CLIENT = 2
PREVIEW_MAX_PER_OWN_CLIENT = 6
SNAPSHOT_WAIT_S = 3.0  # a still in progress pauses the preview this long at most

_slots: weakref.WeakKeyDictionary[object, Slots] = weakref.WeakKeyDictionary()
_slots_lock = threading.Lock()


def _pool(h: Handler) -> Slots:
    """One pool per API server (the stream limit is per listening socket)."""
    with _slots_lock:
        key = h.api
        if key not in _slots:
            _slots[key] = Slots(
                "preview streams",
                PREVIEW_MAX_STREAMS,
                PREVIEW_LOCAL_RESERVED,
                PREVIEW_MAX_PER_CLIENT,
                PREVIEW_MAX_PER_OWN_CLIENT,
            )
        return _slots[key]


def serve_preview(h: Handler, path: str) -> None:
    broadcaster = h.api.agent.camera_service.preview
    if path.endswith(".jpg"):
        jpeg = broadcaster.snapshot(SNAPSHOT_WAIT_S)
        if jpeg is None:
            h.send_error_json(503, "busy", "the camera is taking a photo; try again", headers={"Retry-After": "1"})
            return
        h.send_response(200)
        h.send_header("Content-Type", "image/jpeg")
        h.send_header("Content-Length", str(len(jpeg)))
        h.send_header("Cache-Control", "no-store")
        h.send_header("X-Content-Type-Options", "nosniff")
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(jpeg)
        return
    slots = _pool(h)
    status = slots.take(h.client, h.own_client)
    if status:
        h.close_connection = True
        h.send_error_json(status, "busy", "too many preview streams; retry later", headers={"Retry-After": "5"})
        return
    try:
        _stream(h)
    finally:
        slots.release(h.client)


def _stream(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
    h.send_header("Cache-Control", "no-store")
    h.send_header("X-Content-Type-Options", "nosniff")
    h.send_header("Connection", "close")
    h.end_headers()
    h.close_connection = True
    if h.command == "HEAD":
        return
    api = h.api
    try:
        with api.agent.camera_service.preview.viewer() as viewer:
            while not api.stopping.is_set():
                jpeg = viewer.next_frame(timeout=1.0)
                if jpeg is None:
                    continue
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                h.wfile.write(head.encode() + jpeg + b"\r\n")
                h.wfile.flush()
    except OSError:  # the viewer left (broken pipe, reset) or stopped reading (send timeout)
        return
    except RuntimeError:  # the preview stopped: the agent is stopping
        return
