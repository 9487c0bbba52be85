"""Haiyi ``workflow.submit``: a raw ComfyUI workflow (API-format JSON) with values patched into node inputs.

Submit: the photo and any ``files`` via ``POST /openapi/v1/workflow/upload/file`` (static files once per content:
the client keeps the server-side name by SHA-256, see ``HaiyiClient.upload_static``), their server-side names and
the prompt/params patched into a copy of ``workflow_file`` at the ``inputs`` paths, then JSON
``POST /openapi/v1/workflow/task/submit``. Poll: ``GET /openapi/v1/workflow/task/<id>``.

The ``inputs`` mapping is checked against the workflow file when the config is loaded: every path must name a
node of the file, that node's ``inputs``, and an input the node has; every key must have a value (``image``,
``prompt``, a ``files`` entry or a param). A mapping to a missing node is exit 2 naming the node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agent.jsonutil import loads_strict
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


def check_mapping(doc: Any, dotted: str) -> str | None:
    """Why ``dotted`` ("73.inputs.image") does not name an input of the workflow ``doc``, or None when it does."""
    parts = dotted.split(".")
    if len(parts) != 3 or parts[1] != "inputs" or not all(parts):
        return f"{dotted!r} is not <node id>.inputs.<input name>"
    node_id, _, name = parts
    node = doc.get(node_id) if isinstance(doc, dict) else None
    if not isinstance(node, dict):
        nodes = ", ".join(sorted(doc, key=lambda k: (len(k), k))[:20]) if isinstance(doc, dict) else ""
        return f"the workflow has no node {node_id!r} (nodes: {nodes or 'none'})"
    inputs = node.get("inputs")
    if not isinstance(inputs, dict):
        return f"node {node_id!r} ({node.get('class_type', '?')}) has no inputs"
    if name not in inputs:
        return (
            f"node {node_id!r} ({node.get('class_type', '?')}) has no input {name!r} "
            f"(inputs: {', '.join(inputs) or 'none'})"
        )
    return None


class WorkflowSubmitProfile(ProfileBase):
    endpoint: Literal["workflow.submit"] = Field(description="Haiyi: submit a ComfyUI workflow file (API format)")
    workflow_file: ExistingFile = Field(description="the ComfyUI workflow exported in API format (JSON)")
    inputs: dict[str, str] = Field(
        min_length=1,
        description='where values go: { image = "73.inputs.image", prompt = "6.inputs.text", <param or file> = ... }',
    )
    cluster: str | None = Field(None, description='GPU cluster (GPU-4090, GPU-A800, ...) or "auto" (the default)')
    files: dict[str, ExistingFile] = Field(
        default_factory=dict, description="extra files to upload (once per content), as { input_name = path }"
    )

    choice_keys: ClassVar[frozenset[str]] = frozenset({"prompt", "params", "files"})

    @field_validator("inputs")
    @classmethod
    def _inputs_in_workflow(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        path = info.data.get("workflow_file")
        if path is None:
            return v  # the file itself is reported
        try:
            doc = loads_strict(path.read_bytes())
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read workflow_file {path}: {e}") from None
        if not isinstance(doc, dict):
            raise ValueError(f"workflow_file {path} is not a ComfyUI API-format workflow (a JSON object of nodes)")
        for key, dotted in v.items():
            why = check_mapping(doc, dotted)
            if why is not None:
                raise ValueError(f"{key} = {dotted!r}: {why} in {path.name}")
        return v

    @model_validator(mode="after")
    def _inputs_have_values(self) -> WorkflowSubmitProfile:
        known = {"image", "prompt", *self.files, *self.params, *self.remote_params}
        for c in self.choices:
            known |= set(c.params) | set(c.files)
        missing = [k for k in self.inputs if k not in known]
        if missing:
            raise ValueError(
                f"inputs.{missing[0]} has no value: it is not image, prompt, a files entry or a param "
                "(of the profile, a choice or remote_params)"
            )
        return self


def submit(client: HaiyiClient, req: SubmitRequest) -> SubmitResult:
    profile = profile_as(req, WorkflowSubmitProfile)
    doc = client.workflows.load(profile.workflow_file)
    for key, dotted in profile.inputs.items():
        if key == "image":
            value: Any = client.upload_workflow_file(req.image_name, req.image, "image/jpeg")
        elif key in profile.files:
            path = profile.files[key]
            value = client.upload_static(path.name, read_local(path), mime_of(path))
        elif key == "prompt":
            if req.prompt is None:
                continue  # keep the workflow's own text
            value = req.prompt
        elif key in req.params:
            value = req.params[key]
        else:
            continue  # a remote param nobody set this time: the workflow's own value stays
        try:
            set_path(doc, dotted, value)
        except PermanentError as e:  # the file changed since the config was loaded
            raise PermanentError(f"profile {profile.name}: inputs.{key}: {e}", kind="error") from None

    def send(cluster: str) -> Any:
        body = {"parameters": {"prompt": doc}, "cluster_name": cluster}
        return client.http.post("/openapi/v1/workflow/task/submit", json=body).body

    return SubmitResult(task_id=haiyi.task_id_of(haiyi.payload(client.with_cluster(profile.cluster, send))))


def poll(client: HaiyiClient, task_id: str) -> TaskStatus:
    return client.task(POLL_ROUTE, task_id)


MODE = Mode(
    kind="haiyi", endpoint=ENDPOINT, profile_model=WorkflowSubmitProfile, is_async=True, submit=submit, poll=poll
)
