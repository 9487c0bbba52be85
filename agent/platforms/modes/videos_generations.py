"""EasyAI ``videos.generations``: JSON ``POST /v1/videos/generations``, the photo as the first frame.

``{content: [{type: text, text}, {type: image_url, role: first_frame, image_url: {url}}, {... role: last_frame}],
model, duration, frames, size, aspect_ratio, ...}``: the photo travels as a ``data:`` URL (or, with
``image_as = "upload"``, as a public URL, see hosting.py), an optional static ``last_frame`` the same way; the
params (``duration``, ``frames``, ``size``, ``aspect_ratio``, ...) go at the top level. The reply is not
documented; it is read like ``ai.generations`` (a task id, polled at ``GET /v1/ai/result/<id>``), and the video is
downloaded and proven MP4/WebM by its bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from agent.platforms import easyai
from agent.platforms.base import SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.media import mime_of, read_local
from agent.platforms.modes.common import Mode, ProfileBase, profile_as
from agent.platforms.statics import StaticImage, data_url

if TYPE_CHECKING:
    from agent.platforms.easyai import EasyAIClient

ENDPOINT = "videos.generations"


class VideosGenerationsProfile(ProfileBase):
    endpoint: Literal["videos.generations"] = Field(description="EasyAI: a video starting from the photo")
    model: str = Field(min_length=1, description="the EasyAI model alias")
    last_frame: StaticImage | None = Field(None, description="a static picture the video ends on")
    image_as: Literal["data_url", "upload"] = Field(
        "data_url", description='how pictures travel: inline "data_url", or "upload" (a public URL, see upload_url)'
    )


def picture_ref(client: EasyAIClient, as_: str, name: str, data: bytes, ctype: str, what: str) -> str:
    if as_ == "upload":
        return client.host.url_for(client.http, name, data, ctype, f"{what} is to be sent as a URL (image_as)")
    return data_url(data, ctype)


def submit(client: EasyAIClient, req: SubmitRequest) -> SubmitResult:
    profile = profile_as(req, VideosGenerationsProfile)
    content: list[dict[str, Any]] = []
    if req.prompt:
        content.append({"type": "text", "text": req.prompt})
    first = picture_ref(client, profile.image_as, req.image_name, req.image, "image/jpeg", "the photo")
    content.append({"type": "image_url", "role": "first_frame", "image_url": {"url": first}})
    if profile.last_frame is not None:
        path = profile.last_frame
        last = picture_ref(client, profile.image_as, path.name, read_local(path), mime_of(path), "last_frame")
        content.append({"type": "image_url", "role": "last_frame", "image_url": {"url": last}})
    body = {**req.params, "content": content, "model": profile.model}
    return SubmitResult(task_id=easyai.accepted(client.http.post("/v1/videos/generations", json=body).body))


def poll(client: EasyAIClient, task_id: str) -> TaskStatus:
    return client.result(task_id)


MODE = Mode(
    kind="easyai",
    endpoint=ENDPOINT,
    profile_model=VideosGenerationsProfile,
    is_async=True,
    submit=submit,
    poll=poll,
)
