"""What the bridge publishes: responses, B/events, the retained B/result, and the one serialiser (with redaction)."""

from __future__ import annotations

import json
from typing import Any

from agent.events import Event
from agent.jobs.progress import PROGRESS_KEYS
from agent.redact import Redactor


def response_body(request_id: str | None, *, data: Any = None, error: dict[str, str] | None = None) -> dict[str, Any]:
    """B/response/<action>: {"request_id","status":"ok"|"error","data"?,"error"?}."""
    if error is not None:
        return {"request_id": request_id, "status": "error", "error": error}
    body: dict[str, Any] = {"request_id": request_id, "status": "ok"}
    if data is not None:
        body["data"] = data
    return body


def event_payload(ev: Event) -> dict[str, Any] | None:
    """What B/events carries for a bus event (None: not published there)."""
    d = ev.data
    if ev.type.startswith("job."):
        out: dict[str, Any] = {"type": ev.type, "job_id": d.get("job_id"), "profile": d.get("profile")}
        for k in ("state", "choice", "outputs", "error", "request_id", "source"):
            if d.get(k) is not None:
                out[k] = d[k]
        if "stage" in d:  # a job's event: the progress object, every key present (null: not known)
            out.update({k: d.get(k) for k in PROGRESS_KEYS})
        return out
    if ev.type.startswith("print.") or ev.type in ("printer.state", "printer.resumed"):
        out = {"type": ev.type}
        for k in ("print_id", "job_id", "copies", "source", "cups_job_id", "detail", "state", "code", "message"):
            if d.get(k) is not None:
                out[k] = d[k]
        return out
    if ev.type in ("capture.refused", "alarm"):
        out = {"type": ev.type, "code": d.get("code"), "message": d.get("message")}
        if d.get("platform"):
            out["platform"] = d["platform"]  # alarms are per platform
        return out
    return None


def result_payload(ev: Event) -> dict[str, Any]:
    """B/result (retained) for a `result` event (steps/present.py):
    {"job_id","profile","outputs":[{"type","url","path"}]}."""
    outputs = [
        {
            "type": o.get("type"),
            "url": o.get("url"),
            "path": o.get("path"),
            **({"text": o["text"]} if o.get("text") else {}),
        }
        for o in (ev.data.get("outputs") or [])
        if isinstance(o, dict)
    ]
    return {"job_id": ev.data.get("job_id"), "profile": ev.data.get("profile"), "outputs": outputs}


def first_image_url(result: dict[str, Any]) -> str | None:
    """B/result/url: the URL of a result's first image (Home Assistant's image entity reads it)."""
    for o in result["outputs"]:
        if o.get("type") == "image" and o.get("url"):
            return str(o["url"])
    return None


def dumps(obj: Any, redactor: Redactor) -> str:
    """Compact, stable JSON (a str is sent as it is), with every secret masked: defence in depth, nothing that
    looks like a secret ever leaves the device."""
    text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"), sort_keys=True, default=str)
    return redactor.mask(text)
