"""Haiyi ``workflow.submit``: a raw ComfyUI workflow (API-format JSON) with values patched into node inputs.

Submit: the photo (and any ``files``) via ``POST /openapi/v1/workflow/upload/file``, their server-side names and
the prompt/params patched into a copy of ``workflow_file`` at the ``inputs`` paths, then JSON
``POST /openapi/v1/workflow/task/submit``. Poll: ``GET /openapi/v1/workflow/task/<id>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from agent.platforms import haiyi
from agent.platforms.base import SubmitRequest, SubmitResult, TaskStatus
from agent.platforms.comfy import set_path
from agent.platforms.errors import PermanentError
from agent.platforms.media import mime_of, read_local
from agent.platforms.modes.common import Mode, ProfileBase, profile_as
from agent.schema import ExistingFile

if TYPE_CHECKING:
    from agent.platforms.haiyi import HaiyiClient

ENDPOINT = "workflow.submit"
POLL_ROUTE = "/openapi/v1/workflow/task/{id}"


class WorkflowSubmitProfile(ProfileBase):
    endpoint: Literal["workflow.submit"] = Field(description="Haiyi: submit a ComfyUI workflow file (API format)")
    workflow_file: ExistingFile = Field(description="the ComfyUI workflow exported in API format (JSON)")
    inputs: dict[str, str] = Field(
        min_length=1,
        description='where values go: { image = "73.inputs.image", prompt = "6.inputs.text", <param or file> = ... }',
    )
    cluster: str | None = Field(None, description='GPU cluster (GPU-4090, GPU-A800, ...) or "auto" (the default)')
    files: dict[str, ExistingFile] = Field(
        default_factory=dict, description="extra files to upload, as { input_name = path }"
    )


def submit(client: HaiyiClient, req: SubmitRequest) -> SubmitResult:
    profile = profile_as(req, WorkflowSubmitProfile)
    doc = client.workflows.load(profile.workflow_file)
    for key, dotted in profile.inputs.items():
        if key == "image":
            value: Any = client.upload_workflow_file(req.image_name, req.image, "image/jpeg")
        elif key in profile.files:
            path = profile.files[key]
            value = client.upload_workflow_file(path.name, read_local(path), mime_of(path))
        elif key == "prompt":
            if req.prompt is None:
                continue  # keep the workflow's own text
            value = req.prompt
        elif key in req.params:
            value = req.params[key]
        else:
            raise PermanentError(
                f"profile {profile.name}: inputs.{key} has no value (not image, prompt, a files entry or a param)"
            )
        set_path(doc, dotted, value)

    def send(cluster: str) -> Any:
        body = {"parameters": {"prompt": doc}, "cluster_name": cluster}
        return client.http.post("/openapi/v1/workflow/task/submit", json=body).body

    return SubmitResult(task_id=haiyi.task_id_of(haiyi.payload(client.with_cluster(profile.cluster, send))))


def poll(client: HaiyiClient, task_id: str) -> TaskStatus:
    return client.task(POLL_ROUTE, task_id)


MODE = Mode(
    kind="haiyi", endpoint=ENDPOINT, profile_model=WorkflowSubmitProfile, is_async=True, submit=submit, poll=poll
)
