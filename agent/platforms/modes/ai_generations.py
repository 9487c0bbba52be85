"""EasyAI ``ai.generations``: ``POST /v1/ai/generations`` with ``{params, options: {workflow_name}}``, an async task.

Workflows name their own inputs: the photo goes into the workflow parameter ``image_param`` (default ``image``;
``""`` sends no photo, for a text-only workflow), as a ``data:`` URL or, with ``image_as = "upload"``, as a public
URL (hosting.py); ``files`` puts static pictures into other parameters the same way. The prompt is
``params.positive``; the profile's params are passed as they are. Polled at ``GET /v1/ai/result/<id>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from agent.platforms import easyai
from agent.platforms.base import SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.media import mime_of, read_local
from agent.platforms.modes.common import Mode, ProfileBase, profile_as
from agent.platforms.modes.videos_generations import picture_ref
from agent.platforms.statics import StaticImage

if TYPE_CHECKING:
    from agent.platforms.easyai import EasyAIClient

ENDPOINT = "ai.generations"


class AiGenerationsProfile(ProfileBase):
    endpoint: Literal["ai.generations"] = Field(description="EasyAI: run a workflow as an async task, then poll")
    model: str = Field(min_length=1, description="the EasyAI workflow name (options.workflow_name)")
    image_param: str = Field(
        "image", description='the workflow parameter that receives the photo; "" sends no photo (text only)'
    )
    image_as: Literal["data_url", "upload"] = Field(
        "data_url", description='how pictures travel: inline "data_url", or "upload" (a public URL, see upload_url)'
    )
    files: dict[str, StaticImage] = Field(
        default_factory=dict, description="static pictures for other workflow parameters, as { param = path }"
    )

    choice_keys: ClassVar[frozenset[str]] = frozenset({"prompt", "params", "files"})

    @model_validator(mode="after")
    def _no_clash(self) -> AiGenerationsProfile:
        if self.image_param and self.image_param in self.files:
            raise ValueError(f"files.{self.image_param}: that parameter already receives the photo (image_param)")
        return self

    def sends_photo(self) -> bool:
        return bool(self.image_param)


def submit(client: EasyAIClient, req: SubmitRequest) -> SubmitResult:
    profile = profile_as(req, AiGenerationsProfile)
    params: dict[str, Any] = {}
    if req.prompt is not None:
        params["positive"] = req.prompt
    params.update(req.params)  # then the pictures: a param never replaces the photo
    if profile.image_param:
        params[profile.image_param] = picture_ref(
            client, profile.image_as, req.image_name, req.image, "image/jpeg", "the photo"
        )
    for param, path in profile.files.items():
        params[param] = picture_ref(client, profile.image_as, path.name, read_local(path), mime_of(path), param)
    body = {"params": params, "options": {"workflow_name": profile.model}}
    return SubmitResult(task_id=easyai.accepted(client.http.post("/v1/ai/generations", json=body).body))


def poll(client: EasyAIClient, task_id: str) -> TaskStatus:
    return client.result(task_id)


MODE = Mode(
    kind="easyai", endpoint=ENDPOINT, profile_model=AiGenerationsProfile, is_async=True, submit=submit, poll=poll
)
