"""EasyAI: an OpenAI-compatible image API plus an async task API in front of ComfyUI workflows.

Endpoints used (PLATFORMS.md): ``POST /v1/images/edits`` (sync, multipart), ``POST /v1/ai/generations`` (async),
``GET /v1/ai/result/<id>`` (poll), ``GET /v1/ai/cancel/<id>``.

``rejected`` means "queue over limit, retry later" in the docs. It is never a failed job: on submit and on poll it
raises ``TransientError(kind="rejected")``. A rejected *poll* means the platform dropped the task from its queue,
so the worker's ordinary transient handling (back off, try again) applies; what it does after repeated rejects is
the worker's call, not the client's.
"""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.parse import quote


from agent.config import ProfileConfig
from agent.platforms.base import (
    AuthError,
    OutputType,
    PermanentError,
    RemoteOutput,
    SubmitRequest,
    SubmitResult,
    TaskState,
    TaskStatus,
    TransientError,
)
from agent.platforms.http import (
    HttpClientBase,
    PlatformHTTP,
    as_dict,
    as_percent,
    as_str,
    error_message_from,
    stringify,
    type_from_name,
)

log = logging.getLogger(__name__)

_STATES: dict[str, TaskState] = {
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


def _unwrap(body: Any) -> dict[str, Any]:
    """Replies are sometimes wrapped once more as ``{"data": {...}}``: peel that off."""
    reply = as_dict(body)
    for _ in range(2):
        inner = reply.get("data")
        if "status" not in reply and "task_id" not in reply and isinstance(inner, dict) and (
            "status" in inner or "task_id" in inner
        ):
            reply = inner
        else:
            break
    return reply


def _output_type(word: Any, ref: str) -> OutputType:
    if isinstance(word, str) and word.lower() in _OUTPUT_TYPES:
        return word.lower()  # type: ignore[return-value]
    return type_from_name(ref) if ref else "unknown"


def _outputs(items: Any, default_type: Any, http: PlatformHTTP) -> list[RemoteOutput]:
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


def _status_word(reply: dict[str, Any]) -> str:
    return str(reply.get("status") or "").strip().lower()


def _failure(reply: dict[str, Any], word: str) -> PermanentError | TransientError:
    """The error for a reply whose ``status`` is not a success inside an HTTP 200."""
    if word == "rejected":
        return TransientError(error_message_from(reply) or REJECTED_MESSAGE, kind="rejected")
    reason = error_message_from(reply) or "no reason given"
    return PermanentError(f"EasyAI {word or 'unknown status'}: {reason}", kind="protocol")


def _task_status(reply: dict[str, Any], http: PlatformHTTP) -> TaskStatus:
    word = _status_word(reply)
    if word == "rejected":
        raise _failure(reply, word)
    state = _STATES.get(word, "running")  # an unknown word: keep polling until the task deadline
    if word and word not in _STATES:
        log.warning("EasyAI answered an unknown task status %r; treated as running", word)
    progress = as_percent(reply.get("progress"))
    queue = reply.get("queue")
    queue_position = queue if isinstance(queue, int) and not isinstance(queue, bool) and queue >= 0 else None
    outputs = _outputs(reply.get("output") or reply.get("output_content") or [], reply.get("type"), http)
    message = as_str(reply.get("message"))
    if state == "success":
        progress = 100
        if not outputs:
            return TaskStatus("failed", progress, [], "EasyAI reported success but returned no outputs", word)
    if state == "failed":
        message = message or "EasyAI reported the task as failed"
    return TaskStatus(state, progress, outputs, message, word, queue_position=queue_position)


class EasyAIClient(HttpClientBase):
    """One EasyAI server. Thread-safe (one shared httpx client); ``close()`` when done."""

    kind = "easyai"
    supports_cancel = True


    # ---------------------------------------------------------------- submit

    def submit(self, req: SubmitRequest) -> SubmitResult:
        endpoint = req.profile.endpoint
        if endpoint == "images.edits":
            return self._images_edits(req)
        if endpoint == "ai.generations":
            return self._ai_generations(req)
        raise PermanentError(f"EasyAI has no endpoint {endpoint!r} (images.edits, ai.generations)", kind="error")

    def _model(self, profile: ProfileConfig) -> str:
        if not isinstance(profile.model, str) or not profile.model:
            raise PermanentError(f"profile {profile.name}: EasyAI needs model = \"<workflow alias>\"", kind="error")
        return profile.model

    def _images_edits(self, req: SubmitRequest) -> SubmitResult:
        fields: dict[str, str] = {"model": self._model(req.profile)}
        if req.prompt is not None:
            fields["prompt"] = req.prompt
        for key, value in req.params.items():
            text = stringify(value)
            if text is not None and key not in ("image", "mask"):
                fields[key] = text
        reply = _unwrap(
            self._http.post(
                "/v1/images/edits", data=fields, files={"image": (req.image_name, req.image, "image/jpeg")}
            ).body
        )
        word = _status_word(reply)
        task_id = as_str(reply.get("task_id")) or as_str(as_dict(reply.get("data")).get("taskId"))
        if word in ("submitted", "started", "process", "progressing") and task_id:
            return SubmitResult(task_id=task_id)  # a server that answers edits asynchronously
        if word and word != "success":
            raise _failure(reply, word)
        outputs = _outputs(reply.get("data"), "image", self._http)
        if not outputs:
            raise PermanentError("EasyAI answered the edit without any output", kind="protocol")
        return SubmitResult(task_id=None, status=TaskStatus("success", 100, outputs, None, word or "success"))

    def _ai_generations(self, req: SubmitRequest) -> SubmitResult:
        image = "data:image/jpeg;base64," + base64.b64encode(req.image).decode("ascii")
        params: dict[str, Any] = {"image": image}
        if req.prompt is not None:
            params["positive"] = req.prompt
        params.update(req.params)
        body = {"params": params, "options": {"workflow_name": self._model(req.profile)}}
        reply = _unwrap(self._http.post("/v1/ai/generations", json=body).body)
        word = _status_word(reply)
        if word in ("rejected", "failed", "fail", "error", "cancelled"):
            raise _failure(reply, word)
        task_id = as_str(reply.get("task_id")) or as_str(as_dict(reply.get("data")).get("taskId"))
        if task_id is None:
            raise PermanentError(
                f"EasyAI accepted the task but sent no task id (status {word or 'missing'})", kind="protocol"
            )
        return SubmitResult(task_id=task_id)

    # ---------------------------------------------------------------- poll / cancel / probe

    def poll(self, task_id: str, profile: ProfileConfig) -> TaskStatus:
        reply = _unwrap(self._http.get(f"/v1/ai/result/{quote(str(task_id), safe='')}").body)
        return _task_status(reply, self._http)

    def cancel(self, task_id: str, profile: ProfileConfig) -> None:
        reply = _unwrap(self._http.get(f"/v1/ai/cancel/{quote(str(task_id), safe='')}").body)
        word = _status_word(reply)
        if word and word not in ("success", "cancelled", "canceled"):
            raise PermanentError(
                f"EasyAI did not cancel task {task_id}: {error_message_from(reply) or word}", kind="protocol"
            )

    def probe(self) -> None:
        self._http.probe("/v1/ai/result/probe")

    def verify(self) -> str:
        """Reachable and the key accepted (for `doctor`): an unknown task past the auth guard is a 404."""
        self.probe()
        try:
            self._http.get("/v1/ai/result/edge-agent-doctor")
        except AuthError:
            raise
        except PermanentError as e:
            if e.status != 404:
                raise
        return "reachable, key accepted"

