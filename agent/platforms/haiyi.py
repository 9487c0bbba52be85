"""Haiyi: ComfyUI workflows published as "AI apps", raw ComfyUI API submits, and third-party image models.

This module holds what every Haiyi endpoint shares: the ``{"code", "msg", "data"}`` envelope and its one rule for
what ``code != 0`` means, GPU clusters (``"auto"`` picks one), task-status replies and the workflow file upload.
Each endpoint is a mode: ``modes/apps_run.py``, ``modes/workflow_submit.py``, ``modes/generate_image.py``, each
with its own submit and poll route. There is no cancel endpoint.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from agent.platforms.base import OutputType, PlatformSettings, RemoteOutput, TaskState, TaskStatus
from agent.platforms.client import HttpClientBase, at_the_edge
from agent.platforms.comfy import WorkflowCache
from agent.platforms.errors import AuthError, PermanentError, PlatformError, TransientError
from agent.platforms.media import type_from_name
from agent.platforms.replies import as_dict, as_percent, as_str
from agent.platforms.session import PlatformHTTP

log = logging.getLogger(__name__)

CLUSTERS_PATH = "/openapi/v1/workflow/cluster/all_active_clusters_status"
CLUSTER_CACHE_S = 60.0
_MEDIA_TYPES = frozenset({"image", "video", "audio", "3d"})
STATES: dict[str, TaskState] = {
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


def envelope_error(what: str, msg: str) -> PlatformError:
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


def payload(body: Any) -> Any:
    """``data`` of an enveloped reply after the code check; a bare reply (generate.image) as it is."""
    if not isinstance(body, dict) or "code" not in body:
        return body
    code = body.get("code")
    if code not in (0, "0"):
        raise envelope_error(f"error code {code}", str(body.get("msg") or body.get("message") or ""))
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


def parse_clusters(data: Any) -> list[Cluster]:
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


def task_status(data: Any, http: PlatformHTTP) -> TaskStatus:
    """A task-status payload (apps/task, workflow/task, generate/result) as a TaskStatus."""
    data = as_dict(data)
    word = str(data.get("status") or "").strip().lower()
    state = STATES.get(word, "running")
    if word and word not in STATES:
        log.warning("Haiyi answered an unknown task status %r; treated as running", word)
    progress_field = data.get("progress")  # {"total_progress": N, ...} (workflows) or a bare N (generate)
    step = None
    if isinstance(progress_field, dict):
        step = as_str(as_dict(progress_field.get("curr_node")).get("title"))  # the node running now
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
        declared = str(item.get("type") or "").lower()
        if kind == "info" and declared == "text":  # a caption node: the string is the output
            media.append(RemoteOutput(type="text", text=value, title=as_str(item.get("title"))))
        elif kind == "info":
            url = http.resolve(value)
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
            return TaskStatus(
                "failed", progress, [], f"Haiyi reported success without any media output: {why}", warnings + errors
            )
    if state == "failed":
        message = "; ".join(errors) or message or "; ".join(warnings) or "Haiyi reported the task as failed"
    return TaskStatus(
        state,
        progress,
        media,
        message if state == "failed" else None,
        warnings + errors,
        step=step if state == "running" else None,
    )


def task_id_of(reply: Any) -> str:
    task_id = as_str(as_dict(reply).get("task_id")) or as_str(as_dict(reply).get("taskId"))
    if task_id is None:
        raise PermanentError("Haiyi accepted the request but sent no task id", kind="protocol")
    return task_id


# ------------------------------------------------------------------------------------ the client


def is_auto(cluster: str | None) -> bool:
    return not cluster or cluster.lower() == "auto"


class HaiyiClient(HttpClientBase):
    """One Haiyi server. Thread-safe (one shared httpx client, a locked cluster cache); ``close()`` when done."""

    kind = "haiyi"
    label = "Haiyi"
    supports_cancel = False

    def __init__(
        self, name: str, cfg: PlatformSettings, api_key: SecretStr | None, *, user_agent: str | None = None
    ) -> None:
        super().__init__(name, cfg, api_key, user_agent=user_agent)
        self._lock = threading.Lock()
        self._cluster: tuple[str, float] | None = None  # (name, monotonic time chosen)
        self.workflows = WorkflowCache()  # workflow.submit profiles' workflow files
        self._uploaded: dict[str, str] = {}  # sha256 of a static file -> its server-side name (uploaded once)

    # ---------------------------------------------------------------- clusters

    def cluster_for(self, wanted: str | None) -> str:
        """The named cluster, or for ``"auto"``/unset the best active one (cached ~60 s)."""
        if wanted and not is_auto(wanted):
            return wanted
        with self._lock:
            if self._cluster is not None and time.monotonic() - self._cluster[1] < CLUSTER_CACHE_S:
                return self._cluster[0]
        clusters = parse_clusters(payload(self.http.get(CLUSTERS_PATH).body))
        best = choose_cluster(clusters)
        if best is None:
            raise TransientError(
                f"no active GPU cluster (of {', '.join(c.name for c in clusters) or 'none listed'})", kind="rejected"
            )
        log.info("Haiyi cluster auto: chose %s (%s/%s nodes)", best.name, best.curr_nodes, best.max_nodes)
        with self._lock:
            self._cluster = (best.name, time.monotonic())
        return best.name

    def with_cluster(self, wanted: str | None, send: Callable[[str], Any]) -> Any:
        """Run a submit that names a cluster; an auto choice is forgotten when the submit fails (capacity moves)."""
        cluster = self.cluster_for(wanted)
        try:
            return send(cluster)
        except PlatformError:
            if is_auto(wanted):
                with self._lock:
                    self._cluster = None
            raise

    # ---------------------------------------------------------------- shared by the modes

    def upload_workflow_file(self, name: str, data: bytes, content_type: str) -> str:
        """``POST /openapi/v1/workflow/upload/file``: the server-side file name a workflow input can refer to."""
        reply = payload(
            self.http.post("/openapi/v1/workflow/upload/file", files={"file": (name, data, content_type)}).body
        )
        filename = as_str(as_dict(reply).get("filename"))
        if filename is None:
            raise PermanentError("Haiyi upload answered without a filename", kind="protocol")
        return filename

    def upload_static(self, name: str, data: bytes, content_type: str) -> str:
        """A static file (garment, mask, a workflow's reference picture) uploaded once per content: the server-side
        name is kept by SHA-256 for the client's life, so a job re-sends only its photo. A file edited on disk has
        new content and is uploaded again."""
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            known = self._uploaded.get(digest)
        if known is not None:
            return known
        filename = self.upload_workflow_file(name, data, content_type)
        with self._lock:
            self._uploaded[digest] = filename
        return filename

    def task(self, route: str, task_id: str) -> TaskStatus:
        """GET a task-status route (``route`` holds ``{id}``) and parse the reply."""
        reply = self.http.get(route.format(id=quote(str(task_id), safe="")))
        return task_status(payload(reply.body), self.http)

    # ---------------------------------------------------------------- probe

    @at_the_edge
    def probe(self) -> None:
        self.http.probe(CLUSTERS_PATH)

    @at_the_edge
    def clusters(self) -> list[Cluster]:
        """The platform's GPU clusters as it reports them now (for `doctor`'s pinned-cluster check)."""
        return parse_clusters(payload(self.http.get(CLUSTERS_PATH).body))

    def verify(self) -> str:
        """Reachable and the key accepted (for `doctor`), with the active GPU clusters."""
        self.probe()
        data = payload(self.http.get(CLUSTERS_PATH).body)
        data = data if isinstance(data, list) else []
        active = [c.get("name") for c in data if isinstance(c, dict) and c.get("max_nodes") != 0]
        names = self.http.text(", ".join(map(str, active)), 300)  # the platform's words: masked, bounded
        return f"reachable, key accepted; active clusters: {names or 'none'}"
