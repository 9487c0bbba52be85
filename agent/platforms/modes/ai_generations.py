"""EasyAI ``ai.generations``: ``POST /v1/ai/generations`` with ``{params, options: {workflow_name}}``, an async task.

The photo travels as a ``data:`` URL in ``params.image``, the prompt as ``params.positive``; the task is polled at
``GET /v1/ai/result/<id>``.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from agent.platforms import easyai
from agent.platforms.base import SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.errors import PermanentError
from agent.platforms.modes.common import Mode, ProfileBase, profile_as

if TYPE_CHECKING:
    from agent.platforms.easyai import EasyAIClient

ENDPOINT = "ai.generations"
_REFUSED = ("rejected", "failed", "fail", "error", "cancelled")


class AiGenerationsProfile(ProfileBase):
    endpoint: Literal["ai.generations"] = Field(description="EasyAI: run a workflow as an async task, then poll")
    model: str = Field(min_length=1, description="the EasyAI workflow name (options.workflow_name)")


def submit(client: EasyAIClient, req: SubmitRequest) -> SubmitResult:
    profile = profile_as(req, AiGenerationsProfile)
    params: dict[str, Any] = {"image": "data:image/jpeg;base64," + base64.b64encode(req.image).decode("ascii")}
    if req.prompt is not None:
        params["positive"] = req.prompt
    params.update(req.params)
    body = {"params": params, "options": {"workflow_name": profile.model}}
    reply = easyai.unwrap(client.http.post("/v1/ai/generations", json=body).body)
    word = easyai.status_word(reply)
    if word in _REFUSED:
        raise easyai.failure(reply, word)
    task_id = easyai.task_id_of(reply)
    if task_id is None:
        raise PermanentError(
            f"EasyAI accepted the task but sent no task id (status {word or 'missing'})", kind="protocol"
        )
    return SubmitResult(task_id=task_id)


def poll(client: EasyAIClient, task_id: str) -> TaskStatus:
    return client.result(task_id)


MODE = Mode(
    kind="easyai", endpoint=ENDPOINT, profile_model=AiGenerationsProfile, is_async=True, submit=submit, poll=poll
)
