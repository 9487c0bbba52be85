"""EasyAI routes: the OpenAI-style sync endpoints and the async `ai` task family (see PLATFORMS.md).

Shapes (HTTP 200 unless noted; `wrap_data` wraps every 200 JSON reply once more as {"data": ...}):
  POST /v1/images/generations, /v1/images/edits (sync; wait for a GPU slot plus the run time)
      {"status": "success", "data": [{"url": U, "type": "image"}, ...]}
      {"status": "failed", "message": M, "data": []}            prompt contains FAIL
      {"status": "rejected", "message": M, "data": []}          more than queue_limit tasks would be waiting
  POST /v1/ai/generations, /v1/videos/generations
      {"task_id": T, "status": "submitted", "message": M, "data": {"queue": Q, "taskId": T}}   Q = 0: runs now
      {"status": "rejected", "message": M, "data": {"queue": waiting}}                        no task_id
  GET /v1/ai/result/:taskId
      {"task_id", "status": submitted|started|process|progressing|success|failed|cancelled|rejected,
       "output": [U...] (or strings under `text_output`), "type": image|video|text,
       "progress": 0-100, "queue": Q, "time_remained": seconds, "message"?: on failed/cancelled}
  GET /v1/ai/cancel/:taskId
      {"status": "success", "message": M}; a task already finished: {"status": "failed", "message": M}
Errors are NestJS-shaped: {"statusCode": 400, "message": M, "error": "Bad Request"}; 401 is exactly
{"statusCode": 401, "message": "Unauthorized"}; an unknown task id is a 404.
U is an absolute signed /files/ URL, or a relative /view?filename=&subfolder=&type=output link under
`comfy_view_urls`.

Inputs: edits take the first of `image` / `image[]` (up to 16) and keep its aspect ratio (`aspect_ratio` is
accepted and ignored; `resolution` 1K/2K/4K sets the long edge, capped at 2048; `mask` limits the edit to its
transparent pixels). ai.generations reads the photo from `params.image` (a data: URL or one of the simulator's
own file URLs); without one it draws a picture from `params.positive`. A workflow_name containing "video"
renders a video ("audio": a WAV); the model / workflow name picks the effect ("cartoon", "sketch", "sepia", ...).
`reject_polls` = N: the next N tasks polled while waiting or running are dropped and answer "rejected".
Every request's inputs are recorded (inbox.py): fields, parts with picture sizes, JSON with data: URLs described.
"""

from __future__ import annotations

import math
import re
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from agent.simulator import imaging, inbox
from agent.simulator.files import StoredFile, read_image_ref
from agent.simulator.state import Task
from agent.simulator.wire import BadRequest, Reply, Request, json_reply

if TYPE_CHECKING:
    from agent.simulator.server import Simulator

SUBMITTED_MSG = "成功加入任务清单,排队等待任务执行,任务执行完成后根据output中的taskid取回绘图结果"
REJECTED_MSG = "任务队列已满,请稍后重试 (queue over limit, retry later)"
CANCELLED_MSG = "任务取消成功"
_REASONS = {
    400: "Bad Request",
    404: "Not Found",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    503: "Service Unavailable",
}
_IMAGE_FIELD = re.compile(r"^image(\[\d*\])?$")


def error(status: int, message: str) -> Reply:
    if status == 401:
        return json_reply({"statusCode": 401, "message": "Unauthorized"}, 401)
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if status in _REASONS:
        body["error"] = _REASONS[status]
    return json_reply(body, status)


def _ok(req: Request, obj: dict[str, Any]) -> Reply:
    return json_reply({"data": obj} if "wrap_data" in req.cfg.quirks else obj)


def _int(value: Any, default: int, lo: int, hi: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        v = int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise BadRequest(f"{name} must be a number") from None
    return max(lo, min(hi, v))


def _url(sim: Simulator, req: Request, f: StoredFile) -> str:
    if "comfy_view_urls" in req.cfg.quirks:
        return f"/view?filename={urllib.parse.quote(f.name)}&subfolder=&type=output"
    return req.base_url + sim.board.files.signed_path(f, req.cfg)


def _photo(data: bytes, what: str = "image") -> bytes:
    if imaging.probe(data) is None:
        raise BadRequest(f"{what} is not a readable image file")
    return data


# ------------------------------------------------------------------------------------------------- sync


def images_generations(sim: Simulator, req: Request) -> Reply:
    body = req.json_object()
    sim.board.receive("images.generations", json=inbox.describe_json(body))
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("prompt should not be empty")
    model = str(body.get("model") or "text2img")
    n = _int(body.get("n"), 1, 1, 4, "n")
    photo = None
    image = body.get("image")
    if isinstance(image, list):
        image = image[0] if image else None
    if image:
        photo = _photo(read_image_ref(sim.board.files, image))
    task = sim.board.new_task(
        req.cfg,
        platform="easyai",
        endpoint="images.generations",
        family="easyai.sync",
        prompt=prompt,
        effect=imaging.pick_effect(model),
        render="edit" if photo else "t2i",
        photo=photo,
        n=n,
        long_edge=imaging.parse_resolution(body.get("resolution")),
        size=imaging.parse_size(body.get("size"), body.get("aspect_ratio")),
    )
    return _run_sync(sim, req, task)


def images_edits(sim: Simulator, req: Request) -> Reply:
    parts = req.form()
    fields, described = inbox.describe_parts(parts)
    sim.board.receive("images.edits", fields=fields, parts=described)
    images = [p for p in parts if _IMAGE_FIELD.match(p.name) and p.is_file]
    if not images:
        raise BadRequest("image is required (multipart field 'image' or 'image[]')")
    if len(images) > 16:
        raise BadRequest(f"too many images: {len(images)} (at most 16)")
    model = fields.get("model", "").strip()
    if not model:
        raise BadRequest("model should not be empty")
    photo = _photo(images[0].data)
    mask = next((p.data for p in parts if p.name == "mask" and p.is_file), None)
    task = sim.board.new_task(
        req.cfg,
        platform="easyai",
        endpoint="images.edits",
        family="easyai.sync",
        prompt=fields.get("prompt", ""),
        effect=imaging.pick_effect(model),
        render="edit",
        photo=photo,
        mask=mask,
        n=_int(fields.get("n"), 1, 1, 4, "n"),
        long_edge=imaging.parse_resolution(fields.get("resolution")),
    )
    return _run_sync(sim, req, task)


def _run_sync(sim: Simulator, req: Request, task: Task) -> Reply:
    dropped = sim.board.roll(req.cfg.drop_after_accept_rate)
    position = sim.board.accept(task, req.cfg, reply_dropped=dropped, queue_limit=req.cfg.queue_limit)
    if position is None:
        return _ok(req, {"status": "rejected", "message": REJECTED_MSG, "data": []})
    if dropped:
        return Reply(drop=True)  # the work goes on; the client never hears about it
    if not sim.board.wait_until_done(task, sim.stopping):
        return Reply(drop=True)  # the server is going down mid-request
    files = [] if task.fails else sim.board.outputs(task, req.cfg)
    if task.fails:
        return _ok(req, {"status": "failed", "message": task.error, "data": []})
    return _ok(req, {"status": "success", "data": [{"url": _url(sim, req, f), "type": f.media} for f in files]})


# ------------------------------------------------------------------------------------------------- async


def ai_generations(sim: Simulator, req: Request) -> Reply:
    body = req.json_object()
    sim.board.receive("ai.generations", json=inbox.describe_json(body))
    params, options = body.get("params"), body.get("options")
    if not isinstance(params, dict):
        raise BadRequest("params must be an object")
    if (
        not isinstance(options, dict)
        or not isinstance(options.get("workflow_name"), str)
        or not options["workflow_name"].strip()
    ):
        raise BadRequest("options.workflow_name should not be empty")
    workflow = options["workflow_name"].strip()
    prompt = params.get("positive", params.get("prompt", ""))
    prompt = prompt if isinstance(prompt, str) else str(prompt)
    ref = params.get("image")
    if ref is None:  # workflows name their image input freely: take the first value that is an image link
        ref = next(
            (
                v
                for v in params.values()
                if isinstance(v, str) and (v.startswith("data:image/") or "/files/" in v or "/view?" in v)
            ),
            None,
        )
    photo = _photo(read_image_ref(sim.board.files, ref), "params.image") if ref is not None else None
    width, height = params.get("width"), params.get("height")
    size = imaging.parse_size(
        f"{width}x{height}" if width and height else params.get("size"), params.get("aspect_ratio")
    )
    task = sim.board.new_task(
        req.cfg,
        platform="easyai",
        endpoint="ai.generations",
        family="easyai",
        prompt=prompt,
        effect=imaging.pick_effect(workflow),
        render=_render_of(workflow, photo),
        photo=photo,
        n=_int(params.get("batchSize", params.get("batch_size")), 1, 1, 4, "batchSize"),
        long_edge=imaging.parse_resolution(params.get("resolution")),
        size=size,
        frames=_int(params.get("frames"), 12, 2, 48, "frames"),
    )
    return _submit(sim, req, task)


def _render_of(workflow: str, photo: bytes | None) -> str:
    low = workflow.lower()
    return "video" if "video" in low else "audio" if "audio" in low else ("edit" if photo else "t2i")


def videos_generations(sim: Simulator, req: Request) -> Reply:
    body = req.json_object()
    sim.board.receive("videos.generations", json=inbox.describe_json(body))
    content = body.get("content")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("model should not be empty")
    if not isinstance(content, list) or not content:
        raise BadRequest("content must be a non-empty list")
    text, first, last = "", None, None
    for item in content:
        if not isinstance(item, dict):
            raise BadRequest("content items must be objects")
        if item.get("type") == "text":
            text = str(item.get("text") or "")
        elif item.get("type") == "image_url":
            url = item.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            data = _photo(read_image_ref(sim.board.files, url), "image_url")
            if item.get("role") == "last_frame":
                last = data
            else:
                first = first or data
    if not text and first is None:
        raise BadRequest("content needs a text prompt or a first_frame image")
    task = sim.board.new_task(
        req.cfg,
        platform="easyai",
        endpoint="videos.generations",
        family="easyai",
        prompt=text,
        effect=imaging.pick_effect(model),
        render="video",
        photo=first,
        last_frame=last,
        frames=_int(body.get("frames"), 12, 2, 48, "frames"),
    )
    return _submit(sim, req, task)


def _submit(sim: Simulator, req: Request, task: Task) -> Reply:
    dropped = sim.board.roll(req.cfg.drop_after_accept_rate)
    position = sim.board.accept(task, req.cfg, reply_dropped=dropped, queue_limit=req.cfg.queue_limit)
    if position is None:
        waiting = sim.board.waiting(task.submitted)
        return _ok(req, {"status": "rejected", "message": REJECTED_MSG, "data": {"queue": waiting}})
    if dropped:
        return Reply(drop=True)
    return _ok(
        req,
        {
            "task_id": task.task_id,
            "status": "submitted",
            "message": SUBMITTED_MSG,
            "data": {"queue": position, "taskId": task.task_id},
        },
    )


def _status_word(state: str, frac: float) -> str:
    if state == "queued":
        return "submitted"
    if state == "running":
        return "started" if frac < 0.15 else ("process" if frac < 0.6 else "progressing")
    return state  # success | failed | cancelled


def result(sim: Simulator, req: Request) -> Reply:
    task = sim.board.get("easyai", req.params["id"])
    if task is None:
        return error(404, f"task {req.params['id']} not found")
    if req.cfg.reject_polls and sim.board.reject_at_poll(task, req.cfg.reject_polls):
        return _ok(req, {"task_id": task.task_id, "status": "rejected", "message": REJECTED_MSG, "output": []})
    now = time.time()
    state, frac = task.phase(now)
    if state == "success":
        sim.board.outputs(task, req.cfg)
        state, frac = task.phase(now)  # a render error turns it into "failed"
    task.polls += 1
    progress = {"queued": 0, "running": min(99, int(frac * 100)), "success": 100}.get(state, 0)
    body: dict[str, Any] = {
        "task_id": task.task_id,
        "status": _status_word(state, frac),
        "output": [],
        "type": task.render if task.render in ("video", "audio") else "image",
        "progress": progress,
        "queue": sim.board.position(task, now),
        "time_remained": math.ceil(task.remaining(now)),
    }
    if state == "success":
        files = task.outputs or []
        if "text_output" in req.cfg.quirks:
            body["type"] = "text"
            body["output"] = [f"A {task.effect} rendition ({f.name}): {task.prompt or 'no prompt'}" for f in files]
        else:
            body["output"] = [_url(sim, req, f) for f in files]
            body["type"] = files[0].media if files else body["type"]
    elif state == "failed":
        body["message"] = task.error
    elif state == "cancelled":
        body["message"] = "任务已取消 (cancelled)"
    _progress_quirks(req, body, task.polls)
    return _ok(req, body)


def _progress_quirks(req: Request, body: dict[str, Any], polls: int) -> None:
    if "no_time_remained" in req.cfg.quirks:
        body.pop("time_remained", None)
    if "progress_missing" in req.cfg.quirks:
        body.pop("progress", None)
    elif "progress_garbage" in req.cfg.quirks:
        body["progress"] = ("94%", None, "n/a", {"total_progress": "n/a"})[polls % 4]


def cancel(sim: Simulator, req: Request) -> Reply:
    task = sim.board.get("easyai", req.params["id"])
    if task is None:
        return error(404, f"task {req.params['id']} not found")
    if sim.board.cancel(task, req.cfg):
        return _ok(req, {"status": "success", "message": CANCELLED_MSG})
    return _ok(req, {"status": "failed", "message": "任务已结束,无法取消 (task already finished)"})
