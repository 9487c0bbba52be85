"""EasyAI ``images.generations``: text only, JSON ``POST /v1/images/generations`` (no photo is sent).

For an AI camera that prints a prompt of the day, or a kiosk "make me a poster": ``{prompt, model, ...params}``;
the server maps ``size`` / ``n`` / ``prompt`` to its workflow's width and height, batchSize and positive, and
passes every other key through. Synchronous like images.edits (an async answer is polled like any EasyAI task).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from agent.platforms import easyai
from agent.platforms.base import SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.errors import PermanentError
from agent.platforms.modes.common import Mode, ProfileBase, profile_as

if TYPE_CHECKING:
    from agent.platforms.easyai import EasyAIClient

ENDPOINT = "images.generations"


class ImagesGenerationsProfile(ProfileBase):
    endpoint: Literal["images.generations"] = Field(description="EasyAI: a picture from the prompt alone")
    model: str = Field(min_length=1, description="the EasyAI model alias / workflow name")

    takes_photo: ClassVar[bool] = False


def submit(client: EasyAIClient, req: SubmitRequest) -> SubmitResult:
    profile = profile_as(req, ImagesGenerationsProfile)
    if not (req.prompt or "").strip():
        raise PermanentError(f"profile {profile.name}: images.generations needs a prompt", kind="error")
    body: dict[str, Any] = {**req.params, "prompt": req.prompt, "model": profile.model}
    task_id, status = easyai.sync_result(client.http.post("/v1/images/generations", json=body).body, client.http)
    return SubmitResult(task_id=task_id, status=status)


def poll(client: EasyAIClient, task_id: str) -> TaskStatus:
    return client.result(task_id)


MODE = Mode(
    kind="easyai",
    endpoint=ENDPOINT,
    profile_model=ImagesGenerationsProfile,
    is_async=False,
    submit=submit,
    poll=poll,
)
