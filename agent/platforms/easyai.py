"""EasyAI: an OpenAI-compatible image API plus an async task API in front of ComfyUI workflows.

This module holds what every EasyAI endpoint shares: reply unwrapping, status words, outputs, the task poll
(``GET /v1/ai/result/<id>``) and cancel (``GET /v1/ai/cancel/<id>``). Each endpoint's request is a mode:
``modes/images_edits.py`` (sync, multipart) and ``modes/ai_generations.py`` (async).

``rejected`` means "queue over limit, retry later" in the docs. It is never a failed job. On submit it raises
``TransientError(kind="rejected")``: back off, submit again. On a *poll* it means the platform dropped a task it
had accepted: that task will never run, so polling it again is pointless; it raises
``TransientError(kind="task_rejected")`` and the retry policy sends the photo again (a new task) after a backoff,
for as long as the job's ``task_deadline_s`` allows (agent/jobs/retry.py).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from agent.platforms.base import OutputType, RemoteOutput, TaskState, TaskStatus
from agent.platforms.client import HttpClientBase, at_the_edge
from agent.platforms.errors import AuthError, PermanentError, TransientError
from agent.platforms.media import type_from_name
from agent.platforms.replies import as_dict, as_percent, as_position, as_str, error_message_from
from agent.platforms.session import PlatformHTTP

log = logging.getLogger(__name__)

STATES: dict[str, TaskState] = {
    "submitted": "pending",
    "queued": "pending",
    "pending": "pending",
    "started": "running",
    "process": "running",
    "progressing": "running",
    "processing": "running",
    "running": "running",
    "success": "success",
    "succeeded": "success",
    "failed": "failed",
    "fail": "failed",
    "error": "failed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
_OUTPUT_TYPES: frozenset[str] = frozenset({"image", "video", "audio", "text", "3d"})
REJECTED_MESSAGE = "rejected: platform queue over limit, retry later"


def unwrap(body: Any) -> dict[str, Any]:
    """Replies are sometimes wrapped once more as ``{"data": {...}}``: peel that off."""
    reply = as_dict(body)
    for _ in range(2):
        inner = reply.get("data")
        if (
            "status" not in reply
            and "task_id" not in reply
            and isinstance(inner, dict)
            and ("status" in inner or "task_id" in inner)
        ):
            reply = inner
        else:
            break
    return reply


def status_word(reply: dict[str, Any]) -> str:
    return str(reply.get("status") or "").strip().lower()


def task_id_of(reply: dict[str, Any]) -> str | None:
    """``task_id``, or the ``data.taskId`` some versions send instead."""
    return as_str(reply.get("task_id")) or as_str(as_dict(reply.get("data")).get("taskId"))


def _output_type(word: Any, ref: str) -> OutputType:
    if isinstance(word, str) and word.lower() in _OUTPUT_TYPES:
        return word.lower()  # type: ignore[return-value]
    return type_from_name(ref) if ref else "unknown"


def parse_outputs(items: Any, default_type: Any, http: PlatformHTTP) -> list[RemoteOutput]:
    """``["url", ...]`` (poll) or ``[{"url","type"}, ...]`` (sync) as RemoteOutputs; text stays text."""
    if isinstance(items, (str, dict)):
        items = [items]
    if not isinstance(items, list):
        return []
    out: list[RemoteOutput] = []
    for item in items:
        if isinstance(item, str):
            typ = _output_type(default_type, item)
            value, title = item, None
        elif isinstance(item, dict):
            value = item.get("url") or item.get("text") or item.get("content") or item.get("output") or ""
            if not isinstance(value, str):
                continue
            typ = _output_type(item.get("type", default_type), value)
            title = as_str(item.get("title"))
        else:
            continue
        if not value:
            continue
        if typ == "text":
            out.append(RemoteOutput(type="text", text=value, title=title))
        else:
            out.append(RemoteOutput(type=typ, url=http.resolve(value), title=title))
    return out


def failure(reply: dict[str, Any], word: str) -> PermanentError | TransientError:
    """The error for a reply whose ``status`` is not a success inside an HTTP 200."""
    if word == "rejected":
        return TransientError(error_message_from(reply) or REJECTED_MESSAGE, kind="rejected")
    reason = error_message_from(reply) or "no reason given"
    return PermanentError(f"EasyAI {word or 'unknown status'}: {reason}", kind="protocol")


def task_status(reply: dict[str, Any], http: PlatformHTTP) -> TaskStatus:
    """A ``/v1/ai/result`` reply (already unwrapped) as a TaskStatus; ``rejected`` raises TransientError."""
    word = status_word(reply)
    if word == "rejected":
        why = error_message_from(reply) or REJECTED_MESSAGE
        raise TransientError(f"EasyAI rejected the queued task (it will not run): {why}", kind="task_rejected")
    state = STATES.get(word, "running")  # an unknown word: keep polling until the task deadline
    if word and word not in STATES:
        log.warning("EasyAI answered an unknown task status %r; treated as running", word)
    progress = as_percent(reply.get("progress"))
    queue_position = as_position(reply.get("queue"))
    outputs = parse_outputs(reply.get("output") or reply.get("output_content") or [], reply.get("type"), http)
    message = as_str(reply.get("message"))
    if state == "success":
        progress = 100
        if not outputs:
            return TaskStatus("failed", progress, [], "EasyAI reported success but returned no outputs")
    if state == "failed":
        message = message or "EasyAI reported the task as failed"
    eta = reply.get("time_remained")
    eta_s = float(eta) if isinstance(eta, (int, float)) and not isinstance(eta, bool) and 0 <= eta < 1e7 else None
    if state == "success":
        eta_s = 0.0
    return TaskStatus(state, progress, outputs, message, queue_position=queue_position, eta_s=eta_s)


_STILL_RUNNING = ("submitted", "started", "process", "progressing", "queued", "pending", "running")


def accepted(body: Any) -> str:
    """The task id of an async submit reply (``{task_id, status: submitted, data: {queue, taskId}}``); a refusal
    inside the HTTP 200 raises (``rejected`` as TransientError)."""
    reply = unwrap(body)
    word = status_word(reply)
    if word and word not in _STILL_RUNNING and word != "success":
        raise failure(reply, word)
    task_id = task_id_of(reply)
    if task_id is None:
        raise PermanentError(
            f"EasyAI accepted the task but sent no task id (status {word or 'missing'})", kind="protocol"
        )
    return task_id


def sync_result(body: Any, http: PlatformHTTP) -> tuple[str | None, TaskStatus | None]:
    """A sync endpoint's answer (images.edits, images.generations): ``(None, finished status)``, or
    ``(task_id, None)`` from a server that answers asynchronously instead."""
    reply = unwrap(body)
    word = status_word(reply)
    task_id = task_id_of(reply)
    if word in _STILL_RUNNING and task_id:
        return task_id, None
    if word and word != "success":
        raise failure(reply, word)
    outputs = parse_outputs(reply.get("data"), "image", http)
    if not outputs:
        raise PermanentError("EasyAI answered without any output", kind="protocol")
    return None, TaskStatus("success", 100, outputs, eta_s=0.0)


class EasyAIClient(HttpClientBase):
    """One EasyAI server. Thread-safe (one shared httpx client); ``close()`` when done."""

    kind = "easyai"
    label = "EasyAI"
    supports_cancel = True

    def result(self, task_id: str) -> TaskStatus:
        """``GET /v1/ai/result/<id>``: how every EasyAI task is polled, whichever endpoint started it."""
        reply = unwrap(self.http.get(f"/v1/ai/result/{quote(str(task_id), safe='')}").body)
        return task_status(reply, self.http)

    @at_the_edge
    def cancel(self, task_id: str, endpoint: str) -> None:
        self.mode(endpoint)  # an endpoint of another platform is a bug worth hearing about
        reply = unwrap(self.http.get(f"/v1/ai/cancel/{quote(str(task_id), safe='')}").body)
        word = status_word(reply)
        if word and word not in ("success", "cancelled", "canceled"):
            raise PermanentError(
                f"EasyAI did not cancel task {task_id}: {error_message_from(reply) or word}", kind="protocol"
            )

    @at_the_edge
    def probe(self) -> None:
        self.http.probe("/v1/ai/result/probe")

    @at_the_edge
    def verify(self) -> str:
        """Reachable and the key accepted (for `doctor`): an unknown task past the auth guard is a 404."""
        self.probe()
        route = "/v1/ai/result/edge-agent-doctor"
        try:
            self.http.get(route)
        except AuthError:
            raise
        except PermanentError as e:
            if e.status != 404:
                raise
            if "Cannot GET" in str(e):  # the web framework's own 404: the route itself does not exist here
                raise PermanentError(
                    f"this server has no EasyAI API at {self.http.base_url}{route.rsplit('/', 1)[0]} "
                    "(404 'Cannot GET'): base_url must be the server's root, without /v1",
                    status=404,
                    kind="http",
                ) from None
        return "reachable, key accepted"
