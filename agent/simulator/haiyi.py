"""Haiyi routes: AI apps, the raw ComfyUI workflow API, file uploads and third-party model generation.

Envelope: {"code": 0, "msg": "success", "data": ...}. Validation problems (missing fields, bad JSON, an unknown or
inactive cluster, an unknown task id) are answered in HTTP 200 with code != 0, as the docs suggest:
{"code": 400 | 404 | 10003, "msg": M, "data": null}. 401 is HTTP 401 {"code": 401, "msg": "unauthorized"}.

Workflow tasks (apps/run, workflow/task/submit; either poll route finds either kind of task):
  data = {"status": pending|running|success|fail,
          "progress": {"curr_node": {"id", "title", "progress"}, "total_progress": 0-100},
          "outputs": [{"id", "title", "output", "error_type": info|warning|error}]}
  `output` of an info item is an absolute <base>/api/view?type=output&filename=<name> URL like the docs show
  (a bare <name> under `bare_filenames`). Task ids are integers from 230 ("t-230" under `string_task_ids`).

Third-party generation (no envelope; ids are integers from 24317, "t-24317" under `string_task_ids`):
  POST /openapi/v1/generate/image   -> {"task_id": 24317, "status": "submitted", "message": M}
  GET  /openapi/v1/generate/result/:id
       -> {"task_id": 24317, "status": submitted|running|success|failed, "progress": 0-100,
           "outputs": [{"url": U, "type": "image"}], "message"?: M (on failed)}
  U is an absolute signed /files/ URL (expires after url_ttl_s, or expire_fast_s after the finish under `expire_fast`).

apps/run uses the first uploaded file that is an image as the photo (no image: a drawn picture); its other
string fields form the prompt (FAIL / SLOW apply) and, with workflow_id, pick the effect; a workflow_id
containing "video" renders a video, one containing "caption" adds a text output
({"title": "Caption", "output": <text>, "error_type": "info", "type": "text"}).
`no_file_upload`: POST /openapi/v1/file/upload answers HTTP 404 (a server without that route). workflow/task/submit finds node inputs equal to an uploaded file name;
a node class_type containing "video" renders a video.

Uploads: POST /openapi/v1/workflow/upload/file -> {"code": 0, "msg": "success", "data": {"filename": F}};
POST /openapi/v1/file/upload -> {"success": true, "url": U, "filename": F, "file_size": N} (bare).
F can be patched into a ComfyUI API JSON; U can be passed to generate/image.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from agent.simulator import imaging, inbox
from agent.simulator.files import StoredFile, read_image_ref
from agent.simulator.state import Task
from agent.simulator.wire import BadRequest, Part, Reply, Request, json_reply

if TYPE_CHECKING:
    from agent.simulator.server import Simulator

# (name, display_name, curr_nodes, max_nodes) as in the docs
CLUSTERS: tuple[tuple[str, str, int, int], ...] = (
    ("GPU-4090", "GPU-4090-24GB-单卡(推荐)", 2, 22),
    ("GPU-A800", "GPU-A800-80GB-单卡(推荐)", 8, 21),
    ("GPU-A800x2", "GPU-A800-80GB-2卡", 0, 6),
    ("GPU-A800x4", "GPU-A800-80GB-4卡", 0, 2),
    ("GPU-A800x8", "GPU-A800-80GB-8卡", 0, -1),
)
INACTIVE_CLUSTER = ("GPU-H20", "GPU-H20-96GB-单卡(维护中)", 0, 0)  # listed only under `inactive_cluster`
CLUSTER_NOT_ACTIVE = 10003
_RESERVED = ("workflow_id", "cluster_name", "version_id")
_NODES = (("10", "Load Image"), ("3", "KSampler"), ("8", "VAE Decode"), ("9", "Save Image"))
_VIDEO_NODE = ("81", "Video Combine 🎥🅥🅗🅢")
_WARNINGS = (
    {
        "id": "12",
        "title": "FaceDetailer",
        "output": "Warning: no face detected, detailer skipped",
        "error_type": "warning",
    },
    {
        "id": "27",
        "title": "Upscale Image (using Model)",
        "output": "Error: CUDA out of memory, node skipped",
        "error_type": "error",
    },
)


def ok(data: Any) -> Reply:
    return json_reply({"code": 0, "msg": "success", "data": data})


def error(code: int, msg: str, status: int = 200) -> Reply:
    if code == 401:
        return json_reply({"code": 401, "msg": "unauthorized"}, 401)
    return json_reply({"code": code, "msg": msg, "data": None}, status)


def _n(value: Any) -> int:
    try:
        return max(1, min(4, int(float(value))))
    except (TypeError, ValueError, OverflowError):
        return 1


def _check_cluster(name: str) -> None:
    if name not in {c[0] for c in CLUSTERS}:
        raise BadRequest(f"cluster {name} not active", CLUSTER_NOT_ACTIVE)


def _first_image(parts: list[Part]) -> bytes | None:
    for p in parts:
        if p.is_file and p.data and imaging.probe(p.data) is not None:
            return p.data
    return None


def _accept(sim: Simulator, req: Request, task: Task, reply: dict[str, Any], enveloped: bool = True) -> Reply:
    dropped = sim.board.roll(req.cfg.drop_after_accept_rate)
    sim.board.accept(task, req.cfg, reply_dropped=dropped)
    if dropped:
        return Reply(drop=True)
    return ok(reply) if enveloped else json_reply(reply)


# ------------------------------------------------------------------------------------------------- workflows


def apps_run(sim: Simulator, req: Request) -> Reply:
    parts = req.form()
    received, described = inbox.describe_parts(parts)
    sim.board.receive("apps.run", fields=received, parts=described)
    fields = {p.name: p.text.strip() for p in parts if not p.is_file}
    workflow_id, cluster = fields.get("workflow_id", ""), fields.get("cluster_name", "")
    if not workflow_id:
        raise BadRequest("workflow_id is required")
    if not cluster:
        raise BadRequest("cluster_name is required")
    _check_cluster(cluster)
    photo = _first_image(parts)
    texts = [v for k, v in fields.items() if k not in _RESERVED and v]
    prompt = " ".join(texts)
    task = sim.board.new_task(
        req.cfg,
        platform="haiyi",
        endpoint="apps.run",
        family="haiyi.workflow",
        prompt=prompt,
        effect=imaging.pick_effect(" ".join([workflow_id, *texts])),
        render="video" if "video" in workflow_id.lower() else ("edit" if photo else "t2i"),
        photo=photo,
        n=_n(fields.get("batch_size", fields.get("n"))),
        long_edge=imaging.parse_resolution(fields.get("resolution")),
        caption="caption" in workflow_id.lower(),
    )
    return _accept(sim, req, task, {"task_id": task.wire_id})


def workflow_submit(sim: Simulator, req: Request) -> Reply:
    body = req.json_object()
    cluster = body.get("cluster_name")
    params = body.get("parameters")
    graph = params.get("prompt") if isinstance(params, dict) else None
    if isinstance(graph, str):  # some clients send the workflow JSON as a string
        try:
            graph = json.loads(graph)
        except ValueError:
            graph = None
    if not isinstance(cluster, str) or not cluster.strip():
        raise BadRequest("cluster_name is required")
    if not isinstance(graph, dict) or not graph:
        raise BadRequest("parameters.prompt must be a ComfyUI API JSON object")
    sim.board.receive("workflow.submit", cluster=cluster, workflow=graph)
    _check_cluster(cluster.strip())
    photo: bytes | None = None
    texts: list[str] = []
    video = False
    for node in graph.values():
        if not isinstance(node, dict):
            raise BadRequest("parameters.prompt: every node must be an object")
        ctype = str(node.get("class_type", ""))
        video = video or "video" in ctype.lower()
        inputs = node.get("inputs")
        for value in (inputs if isinstance(inputs, dict) else {}).values():
            if not isinstance(value, str) or not value:
                continue
            f = sim.board.files.file_by_name(value)
            if f is not None:
                if photo is None and f.content_type.startswith("image/"):
                    photo = f.path.read_bytes()
            else:
                texts.append(value)
    prompt = " ".join(texts)
    task = sim.board.new_task(
        req.cfg,
        platform="haiyi",
        endpoint="workflow.submit",
        family="haiyi.workflow",
        prompt=prompt,
        effect=imaging.pick_effect(prompt),
        render="video" if video else ("edit" if photo else "t2i"),
        photo=photo,
    )
    return _accept(sim, req, task, {"task_id": task.wire_id})


def _polled(sim: Simulator, req: Request, family: str) -> tuple[Any, str, float]:
    """The task a poll asks for (404 when unknown), its phase now, outputs rendered once it has succeeded."""
    task = sim.board.get(family, req.params["id"])
    if task is None:
        raise BadRequest(f"task {req.params['id']} not found", 404)
    now = time.time()
    state, frac = task.phase(now)
    if state == "success":
        sim.board.outputs(task, req.cfg)
        state, frac = task.phase(now)
    task.polls += 1
    return task, state, frac


def task_status(sim: Simulator, req: Request) -> Reply:
    task, state, frac = _polled(sim, req, "haiyi.workflow")
    nodes = (*_NODES[:-1], _VIDEO_NODE) if task.render == "video" else _NODES
    status = {"queued": "pending", "running": "running", "success": "success"}.get(state, "fail")
    data: dict[str, Any] = {"status": status}
    if state == "queued":
        progress = {"curr_node": {"id": 0, "title": "Unknown Node", "progress": 0}, "total_progress": 0}
    elif state == "running":
        pos = frac * len(nodes)
        idx = min(len(nodes) - 1, int(pos))
        progress = {
            "curr_node": {"id": nodes[idx][0], "title": nodes[idx][1], "progress": int((pos - idx) * 100)},
            "total_progress": min(99, int(frac * 100)),
        }
    elif state == "success":
        progress = {"curr_node": {"id": nodes[-1][0], "title": nodes[-1][1], "progress": 100}, "total_progress": 100}
    else:
        progress = {"curr_node": {"id": nodes[1][0], "title": nodes[1][1], "progress": 50}, "total_progress": 50}
    data["progress"] = progress
    outputs: list[dict[str, Any]] = []
    if state == "success":
        node = nodes[-1]
        outputs = [
            {"id": node[0], "title": node[1], "output": _view_url(req, f), "error_type": "info"}
            for f in task.outputs or []
        ]
        if task.caption:
            text = f"A {task.effect} portrait: {task.prompt or 'no prompt'}"
            outputs.append({"id": "30", "title": "Caption", "output": text, "error_type": "info", "type": "text"})
        if "node_warnings" in req.cfg.quirks:
            outputs = [dict(_WARNINGS[0]), *outputs, dict(_WARNINGS[1])]
    elif state in ("failed", "cancelled"):
        outputs = [
            {
                "id": nodes[1][0],
                "title": nodes[1][1],
                "output": f"Exception: {task.error or 'cancelled'}",
                "error_type": "error",
            }
        ]
    data["outputs"] = outputs
    _progress_quirks(req, data, task.polls)
    return ok(data)


def _view_url(req: Request, f: StoredFile) -> str:
    if "bare_filenames" in req.cfg.quirks:
        return f.name
    return f"{req.base_url}/api/view?type=output&filename={urllib.parse.quote(f.name)}"


def _progress_quirks(req: Request, data: dict[str, Any], polls: int) -> None:
    if "progress_missing" in req.cfg.quirks:
        data.pop("progress", None)
    elif "progress_garbage" in req.cfg.quirks:
        data["progress"] = ({"curr_node": None, "total_progress": "n/a"}, None, "94%")[polls % 3]


def clusters(sim: Simulator, req: Request) -> Reply:
    rows = [INACTIVE_CLUSTER] if "inactive_cluster" in req.cfg.quirks else []
    rows += list(CLUSTERS)
    return ok([{"name": n, "display_name": d, "curr_nodes": c, "max_nodes": m} for n, d, c, m in rows])


# ------------------------------------------------------------------------------------------------- uploads


def _upload_part(req: Request) -> Part:
    parts = [p for p in req.form() if p.is_file]
    part = next((p for p in parts if p.name == "file"), parts[0] if parts else None)
    if part is None or not part.data:
        raise BadRequest("file is required (multipart field 'file')")
    return part


def _store_upload(sim: Simulator, part: Part) -> StoredFile:
    name = sim.board.files.upload_name(part.filename or "upload")
    ext = "." + name.rsplit(".", 1)[1].lower() if "." in name else ""
    ctype = part.content_type or "application/octet-stream"
    if imaging.probe(part.data) is not None and not ctype.startswith("image/"):
        ctype = "image/png" if part.data.startswith(b"\x89PNG") else "image/jpeg"
    return sim.board.files.store(part.data, ext=ext or ".bin", content_type=ctype, kind="input", name=name)


def upload_file(sim: Simulator, req: Request) -> Reply:
    part = _upload_part(req)
    sim.board.receive("workflow.upload", parts=inbox.describe_parts([part])[1])
    f = _store_upload(sim, part)
    return ok({"filename": f.name})


def file_upload(sim: Simulator, req: Request, target: bool = False) -> Reply:
    """Haiyi's upload route; with ``target`` the simulator's stand-in for an owner's upload target."""
    if "no_file_upload" in req.cfg.quirks and not target:
        return error(404, f"POST {req.path} not found", 404)
    part = _upload_part(req)
    sim.board.receive("upload.target" if target else "file.upload", parts=inbox.describe_parts([part])[1])
    f = _store_upload(sim, part)
    url = req.base_url + sim.board.files.signed_path(f, req.cfg)
    return json_reply({"success": True, "url": url, "filename": f.name, "file_size": f.size})


# ------------------------------------------------------------------------------------------------- generate


def generate_image(sim: Simulator, req: Request) -> Reply:
    body = req.json_object()
    sim.board.receive("generate.image", json=inbox.describe_json(body))
    model, params = body.get("model"), body.get("parameters")
    if not isinstance(model, dict) or not all(
        isinstance(model.get(k), str) and model[k] for k in ("provider", "model")
    ):
        raise BadRequest("model must be {provider, model, type}")
    if not isinstance(params, dict):
        raise BadRequest("parameters must be an object")
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("parameters.prompt is required")
    images = params.get("images") or []
    if not isinstance(images, list):
        raise BadRequest("parameters.images must be a list of URLs")
    kind = model.get("type") or ("image2image" if images else "text2image")
    if kind not in ("text2image", "image2image"):
        raise BadRequest(f"model.type must be text2image or image2image, not {kind!r}")
    photo = None
    if kind == "image2image":
        if not images:
            raise BadRequest("image2image needs parameters.images")
        photo = read_image_ref(sim.board.files, images[0])
        if imaging.probe(photo) is None:
            raise BadRequest("parameters.images[0] is not a readable image")
    task = sim.board.new_task(
        req.cfg,
        platform="haiyi",
        endpoint="generate.image",
        family="haiyi.generate",
        prompt=prompt,
        effect=imaging.pick_effect(model["model"]),
        render="edit" if photo else "t2i",
        photo=photo,
        n=_n(params.get("n", params.get("num_images"))),
        long_edge=imaging.parse_resolution(params.get("resolution")),
        size=imaging.parse_size(params.get("size"), params.get("aspect_ratio")),
    )
    return _accept(
        sim,
        req,
        task,
        {"task_id": task.wire_id, "status": "submitted", "message": "Task has been submitted for processing"},
        enveloped=False,
    )


def generate_result(sim: Simulator, req: Request) -> Reply:
    task, state, frac = _polled(sim, req, "haiyi.generate")
    body: dict[str, Any] = {
        "task_id": task.wire_id,
        "status": {"queued": "submitted", "running": "running", "success": "success"}.get(state, "failed"),
        "progress": {"queued": 0, "running": min(99, int(frac * 100)), "success": 100}.get(state, 0),
        "outputs": [],
    }
    if state == "success":
        body["outputs"] = [
            {"url": req.base_url + sim.board.files.signed_path(f, req.cfg), "type": f.media} for f in task.outputs or []
        ]
    elif state in ("failed", "cancelled"):
        body["message"] = task.error or "cancelled"
    if "progress_missing" in req.cfg.quirks:
        body.pop("progress")
    elif "progress_garbage" in req.cfg.quirks:
        body["progress"] = ("94%", None, "n/a")[task.polls % 3]
    return json_reply(body)
