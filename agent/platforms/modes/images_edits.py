"""EasyAI ``images.edits``: multipart ``POST /v1/images/edits``, the photo plus static images and a mask.

Parts, in this order: the photo, then ``images`` (garment, background, logo: as listed, after the photo), each as
``image_field`` (``image`` repeated, as the docs show, or ``image[]`` as public clients send; at most 16 images
in all); ``mask`` (a PNG, scaled to the photo's size when it differs); ``model``, ``prompt`` and the params as text
fields. Synchronous: the answer carries the finished pictures (raise ``read_timeout_s`` for slow models). A server
that answers edits asynchronously instead sends a task id, polled like any EasyAI task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from agent.platforms import easyai
from agent.platforms.base import SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.modes.common import Mode, ProfileBase, profile_as
from agent.platforms.replies import stringify
from agent.platforms.statics import PngMask, StaticImage, file_part, image_size, mask_for

if TYPE_CHECKING:
    from agent.platforms.easyai import EasyAIClient

ENDPOINT = "images.edits"
MAX_IMAGES = 16  # the photo included (what public clients of the endpoint allow)
_FILE_KEYS = ("image", "image[]", "mask")


class ImagesEditsProfile(ProfileBase):
    endpoint: Literal["images.edits"] = Field(description="EasyAI: edit the photo, the answer carries the result")
    model: str = Field(min_length=1, description="the EasyAI model alias (as shown in EasyAI)")
    images: list[StaticImage] = Field(
        default_factory=list,
        max_length=MAX_IMAGES - 1,
        description="static images sent after the photo, in this order (garment, background, logo)",
    )
    mask: PngMask | None = Field(None, description="a PNG mask: its transparent pixels mark what may change")
    image_field: Literal["image", "image[]"] = Field(
        "image", description='the multipart field of each image: "image" (repeated) or "image[]"'
    )

    choice_keys: ClassVar[frozenset[str]] = frozenset({"prompt", "params", "images"})


def submit(client: EasyAIClient, req: SubmitRequest) -> SubmitResult:
    profile = profile_as(req, ImagesEditsProfile)
    fields: dict[str, str] = {"model": profile.model}
    if req.prompt is not None:
        fields["prompt"] = req.prompt
    for key, value in req.params.items():
        text = stringify(value)
        if text is not None and key not in _FILE_KEYS:
            fields[key] = text
    parts: list[tuple[str, tuple[str, bytes, str]]] = [(profile.image_field, (req.image_name, req.image, "image/jpeg"))]
    parts += [(profile.image_field, file_part(path)) for path in profile.images]
    if profile.mask is not None:
        parts.append(("mask", (profile.mask.name, mask_for(profile.mask, image_size(req.image)), "image/png")))
    body: Any = client.http.post("/v1/images/edits", data=fields, files=parts).body
    task_id, status = easyai.sync_result(body, client.http)
    return SubmitResult(task_id=task_id, status=status)


def poll(client: EasyAIClient, task_id: str) -> TaskStatus:
    return client.result(task_id)


MODE = Mode(
    kind="easyai", endpoint=ENDPOINT, profile_model=ImagesEditsProfile, is_async=False, submit=submit, poll=poll
)
