"""EasyAI ``images.edits``: multipart ``POST /v1/images/edits`` (the photo as ``image``, ``prompt``, ``model``, params).

Synchronous: the answer carries the finished pictures (raise ``read_timeout_s`` for slow models). A server that
answers edits asynchronously instead sends a task id, polled like any EasyAI task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from agent.platforms import easyai
from agent.platforms.base import SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.errors import PermanentError
from agent.platforms.modes.common import Mode, ProfileBase, profile_as
from agent.platforms.replies import stringify

if TYPE_CHECKING:
    from agent.platforms.easyai import EasyAIClient

ENDPOINT = "images.edits"
_STILL_RUNNING = ("submitted", "started", "process", "progressing")


class ImagesEditsProfile(ProfileBase):
    endpoint: Literal["images.edits"] = Field(description="EasyAI: edit the photo, the answer carries the result")
    model: str = Field(min_length=1, description="the EasyAI model alias (as shown in EasyAI)")


def submit(client: EasyAIClient, req: SubmitRequest) -> SubmitResult:
    profile = profile_as(req, ImagesEditsProfile)
    fields: dict[str, str] = {"model": profile.model}
    if req.prompt is not None:
        fields["prompt"] = req.prompt
    for key, value in req.params.items():
        text = stringify(value)
        if text is not None and key not in ("image", "mask"):
            fields[key] = text
    photo = {"image": (req.image_name, req.image, "image/jpeg")}
    reply = easyai.unwrap(client.http.post("/v1/images/edits", data=fields, files=photo).body)
    word = easyai.status_word(reply)
    task_id = easyai.task_id_of(reply)
    if word in _STILL_RUNNING and task_id:
        return SubmitResult(task_id=task_id)  # a server that answers edits asynchronously
    if word and word != "success":
        raise easyai.failure(reply, word)
    outputs = easyai.parse_outputs(reply.get("data"), "image", client.http)
    if not outputs:
        raise PermanentError("EasyAI answered the edit without any output", kind="protocol")
    return SubmitResult(task_id=None, status=TaskStatus("success", 100, outputs))


def poll(client: EasyAIClient, task_id: str) -> TaskStatus:
    return client.result(task_id)


MODE = Mode(
    kind="easyai", endpoint=ENDPOINT, profile_model=ImagesEditsProfile, is_async=False, submit=submit, poll=poll
)
