"""Haiyi: ComfyUI workflows published as "AI apps", raw ComfyUI API submits, and third-party image models.

Endpoints per profile ``endpoint`` (PLATFORMS.md):

=================  =============================================  ===========================================
endpoint           submit                                         poll
=================  =============================================  ===========================================
apps.run           multipart ``/openapi/v1/workflow/apps/run``    ``/openapi/v1/workflow/apps/task/<id>``
workflow.submit    upload ``/openapi/v1/workflow/upload/file``,   ``/openapi/v1/workflow/task/<id>``
                   JSON ``/openapi/v1/workflow/task/submit``
generate.image     upload ``/openapi/v1/file/upload`` (signed     ``/openapi/v1/generate/result/<id>``
                   URL), JSON ``/openapi/v1/generate/image``
=================  =============================================  ===========================================

Replies come in a ``{"code", "msg", "data"}`` envelope (generate.image: bare). ``code != 0`` inside an HTTP 200 is
a failure; ``_envelope_error`` is the one rule for what kind. There is no cancel endpoint.
"""

from __future__ import annotations

import copy
import json
import logging
import mimetypes
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from agent.config import HaiyiPlatformConfig, ProfileConfig, ThirdPartyModel
from agent.platforms.base import (
    AuthError,
    OutputType,
    PermanentError,
    PlatformError,
    RemoteOutput,
    SubmitRequest,
    SubmitResult,
    TaskState,
    TaskStatus,
    TransientError,
)
from agent.platforms.http import (
    HttpClientBase,
    PlatformHTTP,
    as_dict,
    as_percent,
    as_str,
    stringify,
    type_from_name,
)

log = logging.getLogger(__name__)

CLUSTERS_PATH = "/openapi/v1/workflow/cluster/all_active_clusters_status"
CLUSTER_CACHE_S = 60.0
_POLL_PATHS = {
    "apps.run": "/openapi/v1/workflow/apps/task/{id}",
    "workflow.submit": "/openapi/v1/workflow/task/{id}",
    "generate.image": "/openapi/v1/generate/result/{id}",
}
_MEDIA_TYPES = frozenset({"image", "video", "audio", "3d"})
_STATES: dict[str, TaskState] = {
    "pending": "pending",
    "submitted": "pending",
    "queued": "pending",
    "running": "running",
    "processing": "running",
    "success": "success",
    "succeeded": "success",
    "completed": "success",
    "fail": "failed",
    "failed": "failed",
    "error": "failed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}

# ------------------------------------------------------------------------------------ the code != 0 rule

# Words in `msg` that mean "the platform is busy, try later" (English and Chinese): such a code is transient.
_BUSY = re.compile(
    r"busy|rate.?limit|too many|overload|try again|later|throttl|not active|inactive|unavailable|maintenance"
    r"|繁忙|限流|频繁|稍后|排队已满|维护",
    re.IGNORECASE,
)
_AUTH = re.compile(
    r"unauthori[sz]ed|invalid (api )?(key|token)|token (invalid|expired)|forbidden"
    r"|鉴权|未授权|无权限",
    re.IGNORECASE,
)


def _envelope_error(what: str, msg: str) -> PlatformError:
    """What a Haiyi refusal inside an HTTP 200 (``code != 0``, a failed submit status) means: decided here only.

    Busy / rate-limit / cluster-not-active wording → TransientError(kind="rejected") (capacity comes back; an
    "auto" cluster is chosen again on the retry); key wording → AuthError; anything else is the platform refusing
    this request (missing field, unknown task id, ...) → PermanentError with the code and message.
    """
    text = f"Haiyi {what}: {msg or 'no message'}"
    if _BUSY.search(msg or ""):
        return TransientError(text, kind="rejected")
    if _AUTH.search(msg or ""):
        return AuthError(text, kind="auth")
    return PermanentError(text, kind="protocol")


def _payload(body: Any) -> Any:
    """``data`` of an enveloped reply after the code check; a bare reply (generate.image) as it is."""
    if not isinstance(body, dict) or "code" not in body:
        return body
    code = body.get("code")
    if code not in (0, "0"):
        raise _envelope_error(f"error code {code}", str(body.get("msg") or body.get("message") or ""))
    return body.get("data")


# ------------------------------------------------------------------------------------ clusters


@dataclass(frozen=True)
class Cluster:
    name: str
    curr_nodes: int | None
    max_nodes: int | None  # -1: unknown (but active); 0: inactive

    @property
    def active(self) -> bool:
        return self.max_nodes != 0

    def rank(self) -> tuple[int, int]:
        """Sort key, best first: known spare capacity (most first), then unknown (-1), then full clusters."""
        if self.max_nodes is None or self.max_nodes < 0:
            return (1, 0)
        spare = self.max_nodes - (self.curr_nodes or 0)
        return (0, -spare) if spare > 0 else (2, -spare)


def _int_or_none(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()):
        return int(v)
    return None


def _clusters(data: Any) -> list[Cluster]:
    out = []
    for item in data if isinstance(data, list) else []:
        item = as_dict(item)
        name = as_str(item.get("name"))
        if not name:
            continue
        cluster = Cluster(name, _int_or_none(item.get("curr_nodes")), _int_or_none(item.get("max_nodes")))
        if item.get("active") is False or str(item.get("status", "")).lower() in ("inactive", "offline", "disabled"):
            cluster = Cluster(name, cluster.curr_nodes, 0)
        out.append(cluster)
    return out


def choose_cluster(clusters: list[Cluster]) -> Cluster | None:
    """The best active cluster (see ``Cluster.rank``), or None when none is active."""
    active = [c for c in clusters if c.active]
    return min(active, key=Cluster.rank) if active else None


# ------------------------------------------------------------------------------------ task replies


def _task_status(data: Any, http: PlatformHTTP) -> TaskStatus:
    data = as_dict(data)
    word = str(data.get("status") or "").strip().lower()
    state = _STATES.get(word, "running")
    if word and word not in _STATES:
        log.warning("Haiyi answered an unknown task status %r; treated as running", word)
    progress_field = data.get("progress")  # {"total_progress": N, ...} (workflows) or a bare N (generate)
    if isinstance(progress_field, dict):
        progress_field = progress_field.get("total_progress")
    progress = as_percent(progress_field)

    media: list[RemoteOutput] = []
    warnings: list[str] = []
    errors: list[str] = []
    raw_outputs = data.get("outputs")
    if raw_outputs is None:
        raw_outputs = data.get("output") or data.get("images") or []
    for item in raw_outputs if isinstance(raw_outputs, list) else [raw_outputs]:
        if isinstance(item, str):  # a bare list of URLs (generate.image)
            item = {"output": item, "error_type": "info"}
        item = as_dict(item)
        value = item.get("output") if "output" in item else item.get("url")
        if not isinstance(value, str) or not value.strip():
            continue
        kind = str(item.get("error_type") or "info").lower()
        label = as_str(item.get("title")) or as_str(item.get("id")) or "node"
        if kind == "info":
            url = http.resolve(value)
            declared = str(item.get("type") or "").lower()
            typ: OutputType = declared if declared in _MEDIA_TYPES else type_from_name(url)  # type: ignore[assignment]
            media.append(RemoteOutput(type=typ, url=url, title=as_str(item.get("title"))))
        elif kind == "warning":
            warnings.append(f"{label}: {value.strip()}")
        else:
            errors.append(f"{label}: {value.strip()}")

    message = as_str(data.get("msg")) or as_str(data.get("message")) or as_str(data.get("error"))
    if state == "success":
        progress = 100
        if not media:
            why = "; ".join(errors or warnings) or "no output"
            return TaskStatus("failed", progress, [], f"Haiyi reported success without any media output: {why}",
                              word, warnings + errors)
    if state == "failed":
        message = "; ".join(errors) or message or "; ".join(warnings) or "Haiyi reported the task as failed"
    return TaskStatus(state, progress, media, message if state == "failed" else None, word, warnings + errors)


def _task_id(payload: Any) -> str:
    task_id = as_str(as_dict(payload).get("task_id")) or as_str(as_dict(payload).get("taskId"))
    if task_id is None:
        raise PermanentError("Haiyi accepted the request but sent no task id", kind="protocol")
    return task_id


def _set_path(doc: Any, dotted: str, value: Any) -> None:
    """``doc["73"]["inputs"]["image"] = value`` for ``"73.inputs.image"``; PermanentError when a step is missing."""
    *parents, last = dotted.split(".")
    node = doc
    for step in parents:
        if not isinstance(node, dict) or step not in node:
            raise PermanentError(f"workflow has no {dotted!r} (missing {step!r})", kind="error")
        node = node[step]
    if not isinstance(node, dict):
        raise PermanentError(f"workflow has no {dotted!r}", kind="error")
    node[last] = value


# ------------------------------------------------------------------------------------ the client


class HaiyiClient(HttpClientBase):
    """One Haiyi server. Thread-safe (one shared httpx client, a locked cluster cache); ``close()`` when done."""

    kind = "haiyi"
    supports_cancel = False

    def __init__(
        self, name: str, cfg: HaiyiPlatformConfig, api_key: SecretStr | None, *, user_agent: str | None = None
    ) -> None:
        super().__init__(name, cfg, api_key, user_agent=user_agent)
        self._lock = threading.Lock()
        self._cluster: tuple[str, float] | None = None  # (name, monotonic time chosen)
        self._workflows: dict[Path, tuple[float, dict[str, Any]]] = {}  # workflow_file -> (mtime, JSON)

    # ---------------------------------------------------------------- clusters

    def cluster_for(self, profile: ProfileConfig) -> str:
        """The profile's cluster, or for ``"auto"``/unset the best active one (cached ~60 s)."""
        if profile.cluster and profile.cluster.lower() != "auto":
            return profile.cluster
        with self._lock:
            if self._cluster is not None and time.monotonic() - self._cluster[1] < CLUSTER_CACHE_S:
                return self._cluster[0]
        clusters = _clusters(_payload(self._http.get(CLUSTERS_PATH).body))
        best = choose_cluster(clusters)
        if best is None:
            raise TransientError(
                f"no active GPU cluster (of {', '.join(c.name for c in clusters) or 'none listed'})", kind="rejected"
            )
        log.info("Haiyi cluster auto: chose %s (%s/%s nodes)", best.name, best.curr_nodes, best.max_nodes)
        with self._lock:
            self._cluster = (best.name, time.monotonic())
        return best.name

    def _forget_cluster(self) -> None:
        with self._lock:
            self._cluster = None

    # ---------------------------------------------------------------- submit

    def submit(self, req: SubmitRequest) -> SubmitResult:
        endpoint = req.profile.endpoint
        if endpoint == "apps.run":
            return self._apps_run(req)
        if endpoint == "workflow.submit":
            return self._workflow_submit(req)
        if endpoint == "generate.image":
            return self._generate_image(req)
        raise PermanentError(
            f"Haiyi has no endpoint {endpoint!r} (apps.run, workflow.submit, generate.image)", kind="error"
        )

    def _with_cluster(self, profile: ProfileConfig, send: Callable[[str], Any]) -> Any:
        """Run a submit that names a cluster; an auto choice is forgotten when the submit fails."""
        cluster = self.cluster_for(profile)
        try:
            return send(cluster)
        except PlatformError:
            if not profile.cluster or profile.cluster.lower() == "auto":
                self._forget_cluster()
            raise

    def _apps_run(self, req: SubmitRequest) -> SubmitResult:
        profile = req.profile
        if not profile.workflow_id:
            raise PermanentError(f"profile {profile.name}: apps.run needs workflow_id", kind="error")
        files: list[tuple[str, tuple[str, bytes, str]]] = [
            (profile.image_field, (req.image_name, req.image, "image/jpeg"))
        ]
        for field, path in profile.files.items():
            files.append((field, (path.name, _read(path), _mime(path))))

        def send(cluster: str) -> Any:
            fields = {"workflow_id": profile.workflow_id, "cluster_name": cluster}
            if profile.version_id:
                fields["version_id"] = profile.version_id
            if req.prompt is not None:
                fields["prompt"] = req.prompt
            for key, value in req.params.items():
                text = stringify(value)
                if text is not None and key not in fields:
                    fields[key] = text
            return self._http.post("/openapi/v1/workflow/apps/run", data=fields, files=files).body

        return SubmitResult(task_id=_task_id(_payload(self._with_cluster(profile, send))))

    def _upload_workflow_file(self, name: str, data: bytes, content_type: str) -> str:
        payload = _payload(
            self._http.post("/openapi/v1/workflow/upload/file", files={"file": (name, data, content_type)}).body
        )
        filename = as_str(as_dict(payload).get("filename"))
        if filename is None:
            raise PermanentError("Haiyi upload answered without a filename", kind="protocol")
        return filename

    def _workflow(self, path: Path) -> dict[str, Any]:
        """The ComfyUI API JSON of a profile, read once per file change."""
        try:
            mtime = path.stat().st_mtime
            cached = self._workflows.get(path)
            if cached is None or cached[0] != mtime:
                doc = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
                self._workflows[path] = cached = (mtime, doc)
        except (OSError, ValueError) as e:
            raise PermanentError(f"workflow_file {path}: {e}", kind="error") from None
        return copy.deepcopy(cached[1])

    def _workflow_submit(self, req: SubmitRequest) -> SubmitResult:
        profile = req.profile
        if profile.workflow_file is None or not profile.inputs:
            raise PermanentError(f"profile {profile.name}: workflow.submit needs workflow_file and inputs")
        doc = self._workflow(profile.workflow_file)
        for key, dotted in profile.inputs.items():
            if key == "image":
                value: Any = self._upload_workflow_file(req.image_name, req.image, "image/jpeg")
            elif key in profile.files:
                path = profile.files[key]
                value = self._upload_workflow_file(path.name, _read(path), _mime(path))
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
            _set_path(doc, dotted, value)

        def send(cluster: str) -> Any:
            body = {"parameters": {"prompt": doc}, "cluster_name": cluster}
            return self._http.post("/openapi/v1/workflow/task/submit", json=body).body

        return SubmitResult(task_id=_task_id(_payload(self._with_cluster(profile, send))))

    def _generate_image(self, req: SubmitRequest) -> SubmitResult:
        model = req.profile.model
        if not isinstance(model, ThirdPartyModel):
            raise PermanentError(f"profile {req.profile.name}: generate.image needs model = {{provider, model, type}}")
        parameters: dict[str, Any] = {"prompt": req.prompt or ""}
        if model.type == "image2image":
            upload = as_dict(
                _payload(
                    self._http.post(
                        "/openapi/v1/file/upload", files={"file": (req.image_name, req.image, "image/jpeg")}
                    ).body
                )
            )
            url = as_str(upload.get("url"))
            if url is None or upload.get("success") is False:
                raise PermanentError("Haiyi file upload answered without a URL", kind="protocol")
            parameters["images"] = [self._http.resolve(url)]
        parameters.update(req.params)
        body = {"model": model.model_dump(), "parameters": parameters}
        reply = _payload(self._http.post("/openapi/v1/generate/image", json=body).body)
        word = str(as_dict(reply).get("status") or "").lower()
        msg = str(as_dict(reply).get("message") or as_dict(reply).get("msg") or "")
        if word == "rejected":  # as on EasyAI: queue over limit, retry later
            raise TransientError(f"Haiyi rejected the task: {msg or 'queue over limit'}", kind="rejected")
        if _STATES.get(word) == "failed":
            raise _envelope_error(f"status {word}", msg)
        return SubmitResult(task_id=_task_id(reply))

    # ---------------------------------------------------------------- poll / cancel / probe

    def poll(self, task_id: str, profile: ProfileConfig) -> TaskStatus:
        path = _POLL_PATHS.get(profile.endpoint, _POLL_PATHS["apps.run"])
        return _task_status(_payload(self._http.get(path.format(id=quote(str(task_id), safe=""))).body), self._http)

    def cancel(self, task_id: str, profile: ProfileConfig) -> None:
        raise PermanentError("Haiyi has no cancel endpoint", kind="error")

    def probe(self) -> None:
        self._http.probe(CLUSTERS_PATH)

    def verify(self) -> str:
        """Reachable and the key accepted (for `doctor`), with the active GPU clusters."""
        self.probe()
        data = _payload(self._http.get(CLUSTERS_PATH).body)
        data = data if isinstance(data, list) else []
        active = [c.get("name") for c in data if isinstance(c, dict) and c.get("max_nodes") != 0]
        return f"reachable, key accepted; active clusters: {', '.join(map(str, active)) or 'none'}"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise PermanentError(f"cannot read {path}: {e.strerror}", kind="error") from None


def _mime(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
