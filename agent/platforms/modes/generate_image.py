"""Haiyi ``generate.image``: a third-party image model (``{provider, model, type}``).

Submit: for ``image2image`` the photo (then any static ``images``, in order) is uploaded first, since the model
takes reference images only as publicly reachable URLs: ``POST /openapi/v1/file/upload`` answers a signed URL; a
server without that route (HTTP 404, it is missing from one doc version) falls back to the platform's
``upload_url`` or ``public_dir`` + ``public_base_url`` (hosting.py), and with neither set the job fails saying which
keys to set. Then JSON ``POST /openapi/v1/generate/image``; the reply is bare (no envelope). ``text2image`` sends
the prompt alone. Poll: ``GET /openapi/v1/generate/result/<id>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from agent.platforms import haiyi
from agent.platforms.base import SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.errors import PermanentError, TransientError
from agent.platforms.modes.common import Mode, ProfileBase, profile_as
from agent.platforms.replies import as_dict, as_str
from agent.platforms.statics import StaticImage, file_part
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
    images: list[StaticImage] = Field(
        default_factory=list, description="image2image: static reference pictures sent after the photo, in order"
    )

    choice_keys: ClassVar[frozenset[str]] = frozenset({"prompt", "params", "images"})

    def sends_photo(self) -> bool:
        return self.model.type == "image2image"

    @model_validator(mode="after")
    def _images_need_image2image(self) -> GenerateImageProfile:
        if self.images and self.model.type != "image2image":
            raise ValueError('images: reference pictures need model.type = "image2image"')
        return self

    @field_validator("model", mode="before")
    @classmethod
    def _a_table(cls, v: Any) -> Any:
        if not isinstance(v, (dict, ThirdPartyModel)):
            raise ValueError("generate.image needs model = { provider, model, type }")
        return v


UPLOAD_ROUTE = "/openapi/v1/file/upload"


def public_url(client: HaiyiClient, name: str, data: bytes, content_type: str) -> str:
    """A URL the model can fetch ``data`` from: Haiyi's upload route, else the configured fallback."""
    try:
        reply = haiyi.payload(client.http.post(UPLOAD_ROUTE, files={"file": (name, data, content_type)}).body)
    except PermanentError as e:
        if e.status != 404:
            raise
        return client.host.url_for(client.http, name, data, content_type, f"Haiyi has no {UPLOAD_ROUTE} (HTTP 404)")
    upload = as_dict(reply)
    url = as_str(upload.get("url"))
    if url is None or upload.get("success") is False:
        raise PermanentError("Haiyi file upload answered without a URL", kind="protocol")
    return client.http.resolve(url)


def submit(client: HaiyiClient, req: SubmitRequest) -> SubmitResult:
    profile = profile_as(req, GenerateImageProfile)
    model = profile.model
    parameters: dict[str, Any] = {"prompt": req.prompt or ""}
    if model.type == "image2image":
        urls = [public_url(client, req.image_name, req.image, "image/jpeg")]
        urls += [public_url(client, *file_part(path)) for path in profile.images]
        parameters["images"] = urls
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
