"""Haiyi ``apps.run``: a ComfyUI workflow published as an AI app (the recommended way).

Submit: multipart ``POST /openapi/v1/workflow/apps/run`` with ``workflow_id``, ``cluster_name``, optional
``version_id``, the photo as the app's ``image_field``, any ``files`` and the params as the app's own fields, the
prompt as ``prompt_field`` (apps name their text parameter freely; default ``prompt``).
Poll: ``GET /openapi/v1/workflow/apps/task/<id>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from agent.platforms import haiyi
from agent.platforms.base import SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.media import mime_of, read_local
from agent.platforms.modes.common import Mode, ProfileBase, profile_as
from agent.platforms.replies import stringify
from agent.schema import ExistingFile, IdText

if TYPE_CHECKING:
    from agent.platforms.haiyi import HaiyiClient

ENDPOINT = "apps.run"
POLL_ROUTE = "/openapi/v1/workflow/apps/task/{id}"


class AppsRunProfile(ProfileBase):
    endpoint: Literal["apps.run"] = Field(description="Haiyi: run a published AI app (recommended)")
    workflow_id: IdText = Field(min_length=1, description="the published AI app's workflow id")
    version_id: IdText | None = Field(None, description="a version of the app; default: the current one")
    cluster: str | None = Field(None, description='GPU cluster (GPU-4090, GPU-A800, ...) or "auto" (the default)')
    image_field: str = Field("input_image", min_length=1, description="the app's parameter that receives the photo")
    prompt_field: str = Field("prompt", min_length=1, description="the app's parameter that receives the prompt")
    files: dict[str, ExistingFile] = Field(
        default_factory=dict, description="extra files the app takes, as { app_field = path }"
    )

    choice_keys: ClassVar[frozenset[str]] = frozenset({"prompt", "params", "files"})

    @model_validator(mode="after")
    def _fields_differ(self) -> AppsRunProfile:
        taken = {
            "workflow_id": "the app id",
            "cluster_name": "the cluster",
            "version_id": "the app version",
            self.image_field: "the photo (image_field)",
        }
        if self.prompt_field in taken:
            raise ValueError(f"prompt_field {self.prompt_field!r} already carries {taken[self.prompt_field]}")
        for name in self.files:
            if name in taken or name == self.prompt_field:
                what = taken.get(name, "the prompt (prompt_field)")
                raise ValueError(f"files.{name}: that field already carries {what}")
        return self


def submit(client: HaiyiClient, req: SubmitRequest) -> SubmitResult:
    profile = profile_as(req, AppsRunProfile)
    files: list[tuple[str, tuple[str, bytes, str]]] = [(profile.image_field, (req.image_name, req.image, "image/jpeg"))]
    for name, path in profile.files.items():
        files.append((name, (path.name, read_local(path), mime_of(path))))

    def send(cluster: str) -> Any:
        fields = {"workflow_id": profile.workflow_id, "cluster_name": cluster}
        if profile.version_id:
            fields["version_id"] = profile.version_id
        if req.prompt is not None:
            fields[profile.prompt_field] = req.prompt
        for key, value in req.params.items():
            text = stringify(value)
            if text is not None and key not in fields:
                fields[key] = text
        return client.http.post("/openapi/v1/workflow/apps/run", data=fields, files=files).body

    return SubmitResult(task_id=haiyi.task_id_of(haiyi.payload(client.with_cluster(profile.cluster, send))))


def poll(client: HaiyiClient, task_id: str) -> TaskStatus:
    return client.task(POLL_ROUTE, task_id)


MODE = Mode(kind="haiyi", endpoint=ENDPOINT, profile_model=AppsRunProfile, is_async=True, submit=submit, poll=poll)
