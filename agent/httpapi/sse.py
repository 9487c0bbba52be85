"""Server-Sent Events (`GET /api/events`): every event of the bus, as `event: <type>` + JSON data.

Streams live as long as the client stays, so they have their own small pool (limits.SSE_*) inside the connection
slots: a page that opens many streams takes only its share, and API calls always keep most of the slots.
A client over the limit gets 503 with Retry-After; an open stream is never closed to make room. Closing the oldest
would let anyone evict the kiosk's own stream by reconnecting in a loop, and a browser's EventSource reconnects
by itself, so "oldest out" would turn a flood into a steady churn. Two streams are kept for the device's own
clients, so the kiosk can always (re)connect.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from agent.httpapi.limits import (
    SSE_LOCAL_RESERVED,
    SSE_MAX_PER_CLIENT,
    SSE_MAX_PER_OWN_CLIENT,
    SSE_MAX_STREAMS,
    SSE_RETRY_AFTER_S,
    Slots,
)

if TYPE_CHECKING:
    from agent.httpapi.handler import Handler

SSE_KEEPALIVE_S = 10.0  # a comment line this often: well inside SEND_TIMEOUT_S, and it finds departed clients


def event_slots() -> Slots:
    return Slots("event streams", SSE_MAX_STREAMS, SSE_LOCAL_RESERVED, SSE_MAX_PER_CLIENT, SSE_MAX_PER_OWN_CLIENT)


def serve_events(h: Handler) -> None:
    """Stream events to the client of handler `h` until it leaves or the API stops."""
    slots = h.api.event_slots
    status = slots.take(h.client, h.own_client)
    if status:
        h.close_connection = True
        h.send_error_json(
            503,
            "busy",
            "too many event streams; retry later",
            headers={"Retry-After": str(SSE_RETRY_AFTER_S)},
        )
        return
    try:
        _stream(h)
    finally:
        slots.release(h.client)


def _stream(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/event-stream")
    h.send_header("Cache-Control", "no-store")
    h.send_header("Connection", "close")
    h.end_headers()
    h.close_connection = True
    api = h.api
    agent = api.agent
    with agent.events.subscribe(maxsize=512) as sub:
        try:
            _write(h, "agent.state", agent.state())
            last = time.monotonic()
            while not api.stopping.is_set():
                ev = sub.get(timeout=1.0)
                if ev is None:
                    if time.monotonic() - last > SSE_KEEPALIVE_S:
                        h.wfile.write(b": keepalive\n\n")
                        h.wfile.flush()
                        last = time.monotonic()
                    continue
                data = agent.state() if ev.type == "agent.state" else ev.as_dict()
                _write(h, ev.type, data, ev.seq)
                last = time.monotonic()
        except OSError:  # the client left (broken pipe, reset) or stopped reading (send timeout)
            return


def _write(h: Handler, type_: str, data: dict[str, Any], seq: int | None = None) -> None:
    msg = f"event: {type_}\n" + (f"id: {seq}\n" if seq else "") + f"data: {json.dumps(data)}\n\n"
    h.wfile.write(msg.encode())
    h.wfile.flush()
