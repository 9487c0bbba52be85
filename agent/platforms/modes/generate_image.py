"""Haiyi ``generate.image``: a third-party image model (``{provider, model, type}``).

Submit: for ``image2image`` the photo is uploaded first (``POST /openapi/v1/file/upload`` answers a signed URL,
since the model takes reference images as URLs), then JSON ``POST /openapi/v1/generate/image``; the reply is bare
(no envelope). Poll: ``GET /openapi/v1/generate/result/<id>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from agent.platforms import haiyi
from agent.platforms.base import SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.errors import PermanentError, TransientError
from agent.platforms.modes.common import Mode, ProfileBase, profile_as
from agent.platforms.replies import as_dict, as_str
from agent.schema import _Model

if TYPE_CHECKING:
    from agent.platforms.haiyi import HaiyiClient

ENDPOINT = "generate.image"
POLL_ROUTE = "/openapi/v1/generate/result/{id}"


class ThirdPartyModel(_Model):
    provider: str = Field(description="who serves the model, e.g. google")
    model: str = Field(description="the provider's model name, e.g. gemini-3-pro-image-preview")
    type: Literal["text2image", "image2image"] = Field(
        "image2image", description="image2image sends the photo; text2image only the prompt"
    )


class GenerateImageProfile(ProfileBase):
    endpoint: Literal["generate.image"] = Field(description="Haiyi: a third-party image model")
    model: ThirdPartyModel = Field(description="the model, as { provider, model, type }")

    @field_validator("model", mode="before")
    @classmethod
    def _a_table(cls, v: Any) -> Any:
        if not isinstance(v, (dict, ThirdPartyModel)):
            raise ValueError("generate.image needs model = { provider, model, type }")
        return v


def submit(client: HaiyiClient, req: SubmitRequest) -> SubmitResult:
    model = profile_as(req, GenerateImageProfile).model
    parameters: dict[str, Any] = {"prompt": req.prompt or ""}
    if model.type == "image2image":
        photo = {"file": (req.image_name, req.image, "image/jpeg")}
        upload = as_dict(haiyi.payload(client.http.post("/openapi/v1/file/upload", files=photo).body))
        url = as_str(upload.get("url"))
        if url is None or upload.get("success") is False:
            raise PermanentError("Haiyi file upload answered without a URL", kind="protocol")
        parameters["images"] = [client.http.resolve(url)]
    parameters.update(req.params)
    body = {"model": model.model_dump(), "parameters": parameters}
    reply = as_dict(haiyi.payload(client.http.post("/openapi/v1/generate/image", json=body).body))
    word = str(reply.get("status") or "").lower()
    msg = str(reply.get("message") or reply.get("msg") or "")
    if word == "rejected":  # as on EasyAI: queue over limit, retry later
        raise TransientError(f"Haiyi rejected the task: {msg or 'queue over limit'}", kind="rejected")
    if haiyi.STATES.get(word) == "failed":
        raise haiyi.envelope_error(f"status {word}", msg)
    return SubmitResult(task_id=haiyi.task_id_of(reply))


def poll(client: HaiyiClient, task_id: str) -> TaskStatus:
    return client.task(POLL_ROUTE, task_id)


MODE = Mode(
    kind="haiyi", endpoint=ENDPOINT, profile_model=GenerateImageProfile, is_async=True, submit=submit, poll=poll
)
