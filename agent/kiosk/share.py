"""Share pages: each job's unguessable token (`Job.share_token`, set at capture) opens `/share/<token>` on a guest's
phone. Only that job is reachable with it, only its outputs are served through it, and it stops working
`[display] share_expiry_h` after the capture. The QR code pointing at it is drawn here, on the device (segno)."""

from __future__ import annotations

import io
import re
from functools import lru_cache
from typing import Any

from agent import clock
from agent.jobs.model import Job, JobState
from agent.jobs.store import JobStore

TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")  # token_urlsafe(16) is 22 characters
_STAGE_OF_STATE = {
    JobState.CAPTURED: "queued",
    JobState.SUBMITTING: "uploading",
    JobState.SUBMITTED: "running",
    JobState.DOWNLOADING: "downloading",
    JobState.DONE: "done",
}


def share_url(job: Job, base: str) -> str | None:
    return f"{base.rstrip('/')}/share/{job.share_token}" if job.share_token else None


def guest_stage(job: Job) -> str:
    """What a guest reads: the stage the steps set, else one derived from the state (older jobs, other helpers'
    changes not merged yet)."""
    if job.state.final and job.state != JobState.DONE:
        return "failed"
    return job.stage or _STAGE_OF_STATE.get(job.state, "queued")


def find_shared(store: JobStore, token: str, expiry_h: float) -> tuple[Job | None, str]:
    """(job, "ok") for a live token; (None, "expired") past its time; (None, "unknown") otherwise."""
    if not TOKEN.fullmatch(token):
        return None, "unknown"
    job = store.find_by_share_token(token)
    if job is None:
        return None, "unknown"
    if clock.now() - job.created_at > expiry_h * 3600:
        return None, "expired"
    return job, "ok"


def shared_view(job: Job, token: str) -> dict[str, Any]:
    """The phone's view of one job: progress and its outputs, each linked through the token (never the job id,
    never a path, never the error text, which may name internals)."""
    outputs = []
    if job.state == JobState.DONE:
        for o in job.outputs:
            entry: dict[str, Any] = {"type": o.type}
            if o.text is not None:
                entry["text"] = o.text
            name = (o.url or o.path or "").rsplit("/", 1)[-1]
            if o.type != "text" and name:
                entry["url"] = f"/share/{token}/{name}"
            outputs.append(entry)
    return {
        "state": job.state.value,
        "stage": guest_stage(job),
        "progress": job.progress,
        "queue_position": job.queue_position,
        "eta_s": job.eta_s,
        "waiting": job.wait_kind if job.state == JobState.CAPTURED else None,
        "outputs": outputs,
        "expires_at": None,
    }


def output_names(job: Job) -> set[str]:
    """The files a share link may fetch: the job's outputs, nothing else (not the capture, not job.json)."""
    if job.state != JobState.DONE:
        return set()
    return {(o.url or o.path or "").rsplit("/", 1)[-1] for o in job.outputs if o.type != "text"} - {""}


@lru_cache(maxsize=64)  # the QR code of a link never changes: drawn once, not at every request
def qr_code(url: str, kind: str) -> bytes:
    """The QR code of `url` as SVG or PNG (segno: no Pillow, no network); medium error correction survives a
    scratched or glare-lit screen."""
    import segno  # here: a booth whose guests never open a share page does not keep it in memory

    qr = segno.make(url, error="m")
    buf = io.BytesIO()
    if kind == "svg":
        qr.save(buf, kind="svg", scale=8, border=2, xmldecl=False, svgns=True)
    else:
        qr.save(buf, kind="png", scale=8, border=2)
    return buf.getvalue()
