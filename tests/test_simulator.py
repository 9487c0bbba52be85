"""The built-in platform simulator, over real HTTP on loopback (no mocks)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from agent.simulator import FAILURE_KINDS, QUIRKS, SimConfig, Simulator

KEY = "sk-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
ROOT = Path(__file__).resolve().parents[1]
AI_BODY = {"params": {"positive": "x"}, "options": {"workflow_name": "w"}}


# ------------------------------------------------------------------------------------------------- helpers


def photo(w: int = 400, h: int = 300, fmt: str = "JPEG") -> bytes:
    """A photo-like picture: a colour gradient with a few shapes, so every effect visibly changes it."""
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    arr = np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w)), np.full((h, w), 90.0)], axis=-1)
    img = Image.fromarray(arr.astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse((w * 0.2, h * 0.2, w * 0.5, h * 0.7), fill=(240, 220, 40))
    d.rectangle((w * 0.6, h * 0.1, w * 0.9, h * 0.5), fill=(20, 40, 200))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def mean_diff(a: Image.Image, b: Image.Image) -> float:
    b = b.convert("RGB").resize(a.size)
    return float(np.abs(np.asarray(a.convert("RGB"), np.float32) - np.asarray(b, np.float32)).mean())


@pytest.fixture
def make_sim():
    sims: list[Simulator] = []

    def make(**kw) -> Simulator:
        kw.setdefault("latency", 0.15)
        sim = Simulator(SimConfig(**kw))
        sim.start()
        sims.append(sim)
        return sim

    yield make
    for s in sims:
        s.close()


@pytest.fixture
def sim(make_sim) -> Simulator:
    return make_sim()


@pytest.fixture
def client():
    with httpx.Client(headers=AUTH, timeout=15) as c:
        yield c


def easyai_submit(c: httpx.Client, sim: Simulator, prompt: str = "a dog", workflow: str = "cartoon", **params):
    r = c.post(
        f"{sim.url}/v1/ai/generations",
        json={"params": {"positive": prompt, **params}, "options": {"workflow_name": workflow}},
    )
    assert r.status_code == 200, r.text
    return r.json()


def easyai_wait(
    c: httpx.Client, sim: Simulator, task_id: str, timeout: float = 10, interval: float = 0.02
) -> list[dict]:
    """Poll until the task is finished; returns every reply seen."""
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = c.get(f"{sim.url}/v1/ai/result/{task_id}").json()
        body = body.get("data", body) if "task_id" not in body else body
        seen.append(body)
        if body["status"] in ("success", "failed", "cancelled"):
            return seen
        time.sleep(interval)
    raise AssertionError(f"task {task_id} did not finish: {seen[-1]}")


def haiyi_wait(c: httpx.Client, sim: Simulator, task_id, route: str = "workflow/apps/task", timeout: float = 10):
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = c.get(f"{sim.url}/openapi/v1/{route}/{task_id}").json()
        seen.append(body)
        status = body["data"]["status"] if "data" in body else body["status"]
        if status in ("success", "fail", "failed"):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} did not finish: {seen[-1]}")


def edits(c: httpx.Client, sim: Simulator, img: bytes | None = None, field: str = "image[]", **data):
    data.setdefault("model", "cartoon")
    data.setdefault("prompt", "make it a cartoon")
    return c.post(
        f"{sim.url}/v1/images/edits",
        files=[(field, ("me.jpg", img or photo(), "image/jpeg"))],
        data={k: str(v) for k, v in data.items()},
    )


def upload(c: httpx.Client, sim: Simulator, img: bytes, route: str = "workflow/upload/file") -> dict:
    r = c.post(f"{sim.url}/openapi/v1/{route}", files={"file": ("站立人物.jpg", img, "image/jpeg")})
    assert r.status_code == 200, r.text
    return r.json()


# ------------------------------------------------------------------------------------------------- auth


def test_easyai_auth_nestjs_401(sim, client):
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic sk-test"},
        {"Authorization": "Bearer"},
    ):
        r = httpx.get(f"{sim.url}/v1/ai/result/abc", headers=headers)
        assert r.status_code == 401
        assert r.json() == {"statusCode": 401, "message": "Unauthorized"}
    r = client.get(f"{sim.url}/v1/ai/result/abc")
    assert r.status_code == 404 and r.json()["statusCode"] == 404  # past auth: the id is unknown


def test_haiyi_auth_401(sim, client):
    r = httpx.get(
        f"{sim.url}/openapi/v1/workflow/cluster/all_active_clusters_status", headers={"Authorization": "Bearer wrong"}
    )
    assert r.status_code == 401
    assert r.json() == {"code": 401, "msg": "unauthorized"}
    r = client.get(f"{sim.url}/openapi/v1/workflow/cluster/all_active_clusters_status")
    assert r.status_code == 200 and r.json()["code"] == 0


def test_empty_api_keys_accepts_any_bearer(make_sim):
    sim = make_sim(api_keys=())
    assert httpx.get(f"{sim.url}/v1/ai/result/x", headers={"Authorization": "Bearer anything"}).status_code == 404
    assert httpx.get(f"{sim.url}/v1/ai/result/x", headers={"Authorization": "Bearer"}).status_code == 401


# ------------------------------------------------------------------------------------------------- EasyAI


def test_edits_returns_real_transformed_images(sim, client):
    src = photo(400, 300)
    r = edits(client, sim, src, n=2)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success" and len(body["data"]) == 2
    outs = []
    for item in body["data"]:
        assert item["type"] == "image" and item["url"].startswith(sim.url + "/files/")
        d = client.get(item["url"])
        assert d.status_code == 200 and d.headers["content-type"] == "image/png"
        img = decode(d.content)
        assert img.size == (400, 300)
        assert mean_diff(img, decode(src)) > 10  # really transformed
        outs.append(img)
    assert mean_diff(outs[0], outs[1]) > 1  # n variants are not copies


@pytest.mark.parametrize(
    "size,resolution,expect",
    [((300, 400), None, (300, 400)), ((400, 300), "1K", (1024, 768)), ((600, 300), "4K", (2048, 1024))],
)
def test_edits_follow_aspect_and_resolution(sim, client, size, resolution, expect):
    extra = {"resolution": resolution} if resolution else {}
    r = edits(client, sim, photo(*size), field="image", model="sepia", **extra)
    img = decode(client.get(r.json()["data"][0]["url"]).content)
    assert img.size == expect


def test_edits_accepts_many_images_and_mask_but_not_17(sim, client):
    mask = Image.new("RGBA", (400, 300), (0, 0, 0, 255))
    ImageDraw.Draw(mask).rectangle((0, 0, 199, 299), fill=(0, 0, 0, 0))  # left half: edit here
    mbuf = io.BytesIO()
    mask.save(mbuf, "PNG")
    src = photo(400, 300)
    files = [("image[]", (f"{i}.jpg", src, "image/jpeg")) for i in range(3)]
    files.append(("mask", ("m.png", mbuf.getvalue(), "image/png")))
    r = client.post(f"{sim.url}/v1/images/edits", files=files, data={"model": "invert", "prompt": "x"})
    out = np.asarray(decode(client.get(r.json()["data"][0]["url"]).content).convert("RGB"), np.float32)
    orig = np.asarray(decode(src).convert("RGB"), np.float32)
    assert np.abs(out[:, :190] - orig[:, :190]).mean() > 50  # edited
    assert np.abs(out[:, 210:] - orig[:, 210:]).mean() < 5  # kept
    files = [("image[]", (f"{i}.jpg", src, "image/jpeg")) for i in range(17)]
    r = client.post(f"{sim.url}/v1/images/edits", files=files, data={"model": "x"})
    assert r.status_code == 400 and r.json()["statusCode"] == 400 and "16" in r.json()["message"]


def test_easyai_validation_errors(sim, client):
    r = client.post(f"{sim.url}/v1/images/edits", data={"model": "cartoon"})
    assert r.status_code == 400 and r.json()["statusCode"] == 400 and "image" in r.json()["message"]
    r = edits(client, sim, b"definitely not a picture")
    assert r.status_code == 400
    r = client.post(f"{sim.url}/v1/ai/generations", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "Bad Request"
    r = client.post(f"{sim.url}/v1/ai/generations", json={"params": {"positive": "x"}, "options": {}})
    assert r.status_code == 400 and "workflow_name" in r.json()["message"]
    r = client.post(
        f"{sim.url}/v1/ai/generations",
        json={"params": {"image": "https://example.com/a.jpg"}, "options": {"workflow_name": "w"}},
    )
    assert r.status_code == 400 and "no network" in r.json()["message"]
    r = client.get(f"{sim.url}/v1/nothing/here")
    assert r.status_code == 404 and r.json()["statusCode"] == 404
    assert sim.record() == []


def test_generations_text_to_image_sync(sim, client):
    r = client.post(
        f"{sim.url}/v1/images/generations", json={"prompt": "a cat", "model": "text2img", "size": "512x256", "n": 2}
    )
    body = r.json()
    assert body["status"] == "success" and len(body["data"]) == 2
    img = decode(client.get(body["data"][0]["url"]).content)
    assert img.size == (512, 256) and len(np.unique(np.asarray(img.convert("L")))) > 20  # a drawn picture
    assert sim.record()[0]["endpoint"] == "images.generations" and sim.record()[0]["image_sha256"] is None


def test_double_slash_and_trailing_slash_paths(sim, client):
    r = client.post(
        f"{sim.url}//v1/ai/generations/", json={"params": {"positive": "x"}, "options": {"workflow_name": "flux"}}
    )
    assert r.status_code == 200 and r.json()["status"] == "submitted"
    assert client.get(f"{sim.url}//v1//ai/result/{r.json()['task_id']}").status_code == 200


def test_async_task_goes_through_statuses_with_rising_progress(make_sim, client):
    sim = make_sim(workers=1, latency=0.4)
    first = easyai_submit(client, sim, "first")
    assert first["data"] == {"queue": 0, "taskId": first["task_id"]}
    src = photo(320, 200)
    data_url = "data:image/jpeg;base64," + base64.b64encode(src).decode()
    second = easyai_submit(client, sim, "second", image=data_url)
    assert second["status"] == "submitted" and second["data"]["queue"] == 1
    seen = easyai_wait(client, sim, second["task_id"], interval=0.005)
    statuses = [s["status"] for s in seen]
    assert statuses[0] == "submitted" and seen[0]["queue"] == 1 and seen[0]["time_remained"] >= 1
    for word in ("started", "success"):
        assert word in statuses
    assert {"process", "progressing"} & set(statuses)
    order = ["submitted", "started", "process", "progressing", "success"]
    assert [order.index(s) for s in statuses] == sorted(order.index(s) for s in statuses)
    progress = [s["progress"] for s in seen]
    assert all(isinstance(p, int) for p in progress) and progress == sorted(progress) and progress[-1] == 100
    final = seen[-1]
    assert final["type"] == "image" and len(final["output"]) == 1
    img = decode(client.get(final["output"][0]).content)
    assert img.size == (320, 200) and mean_diff(img, decode(src)) > 10
    rec = sim.record()
    assert rec[1]["image_sha256"] == hashlib.sha256(src).hexdigest()


def test_failing_prompt_easyai(sim, client):
    t = easyai_submit(client, sim, "please FAIL")
    final = easyai_wait(client, sim, t["task_id"])[-1]
    assert final["status"] == "failed" and "FAIL" in final["message"] and final["output"] == []
    r = edits(client, sim, prompt="FAIL now")
    assert r.status_code == 200 and r.json()["status"] == "failed" and r.json()["message"]


def test_slow_prompt_takes_30x(make_sim, client):
    sim = make_sim(latency=0.02)
    t = easyai_submit(client, sim, "SLOW please")
    time.sleep(0.15)  # 7x latency: a normal task would be long done
    assert client.get(f"{sim.url}/v1/ai/result/{t['task_id']}").json()["status"] != "success"
    assert easyai_wait(client, sim, t["task_id"])[-1]["status"] == "success"


def test_cancel(make_sim, client):
    sim = make_sim(workers=1, latency=0.2)
    running = easyai_submit(client, sim, "SLOW")  # 6 s
    waiting = easyai_submit(client, sim, "next")
    assert waiting["data"]["queue"] == 1
    r = client.get(f"{sim.url}/v1/ai/cancel/{running['task_id']}")
    assert r.json() == {"status": "success", "message": "任务取消成功"}
    final = client.get(f"{sim.url}/v1/ai/result/{running['task_id']}").json()
    assert final["status"] == "cancelled" and final["output"] == []
    # the freed GPU slot goes to the waiting task at once
    assert easyai_wait(client, sim, waiting["task_id"], timeout=2)[-1]["status"] == "success"
    again = client.get(f"{sim.url}/v1/ai/cancel/{waiting['task_id']}").json()
    assert again["status"] == "failed"  # already finished
    r = client.get(f"{sim.url}/v1/ai/cancel/000000000000000000000000")
    assert r.status_code == 404 and r.json()["statusCode"] == 404


def test_capacity_one_worker_serialises_sync_edits(make_sim):
    sim = make_sim(workers=1, latency=0.3)

    def one(_):
        with httpx.Client(headers=AUTH, timeout=10) as c:
            t0 = time.time()
            assert edits(c, sim).json()["status"] == "success"
            return time.time() - t0

    with ThreadPoolExecutor(2) as pool:
        times = sorted(pool.map(one, range(2)))
    assert times[1] >= 0.55 and times[1] - times[0] >= 0.2  # the second waited for the first
    tasks = sorted(sim.tasks(), key=lambda t: t["start"])
    assert tasks[1]["start"] >= tasks[0]["end"] - 1e-6


def test_workers_change_at_runtime_replans(make_sim, client):
    sim = make_sim(workers=1, latency=0.5)
    ids = [easyai_submit(client, sim, f"t{i}")["task_id"] for i in range(3)]
    assert [client.get(f"{sim.url}/v1/ai/result/{i}").json()["queue"] for i in ids] == [0, 1, 2]
    sim.configure(workers=3)
    after = [client.get(f"{sim.url}/v1/ai/result/{i}").json() for i in ids[1:]]
    assert all(a["status"] in ("started", "process") and a["queue"] == 0 for a in after)


def test_queue_limit_rejects(make_sim, client):
    sim = make_sim(workers=1, queue_limit=1, latency=0.3)
    a = easyai_submit(client, sim, "a")
    b = easyai_submit(client, sim, "b")
    c = easyai_submit(client, sim, "c")
    assert a["status"] == b["status"] == "submitted"
    assert c["status"] == "rejected" and "task_id" not in c and c["data"]["queue"] == 1
    r = edits(client, sim)
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert [x["task_id"] for x in sim.record()] == [a["task_id"], b["task_id"]]
    easyai_wait(client, sim, b["task_id"])
    assert easyai_submit(client, sim, "d")["status"] == "submitted"  # room again


def test_video_generation_is_a_real_video(sim, client):
    src = photo(320, 240)
    frame = "data:image/jpeg;base64," + base64.b64encode(src).decode()
    r = client.post(
        f"{sim.url}/v1/videos/generations",
        json={
            "model": "dream",
            "frames": 6,
            "content": [
                {"type": "text", "text": "a cat"},
                {"type": "image_url", "role": "first_frame", "image_url": {"url": frame}},
            ],
        },
    )
    t = r.json()
    assert t["status"] == "submitted"
    final = easyai_wait(client, sim, t["task_id"])[-1]
    assert final["type"] == "video" and final["output"][0].split("?")[0].endswith(".mp4")
    d = client.get(final["output"][0])
    assert d.headers["content-type"] == "video/mp4"
    import cv2

    with tempfile.NamedTemporaryFile(suffix=".mp4") as fh:
        fh.write(d.content)
        fh.flush()
        cap = cv2.VideoCapture(fh.name)
        frames = 0
        while cap.read()[0]:
            frames += 1
        assert frames == 6 and cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 320
        cap.release()
    assert sim.record()[0]["endpoint"] == "videos.generations"


# ------------------------------------------------------------------------------------------------- Haiyi


def test_haiyi_apps_run_end_to_end(sim, client):
    src = photo(300, 400)
    r = client.post(
        f"{sim.url}/openapi/v1/workflow/apps/run",
        data={"workflow_id": "1234", "cluster_name": "GPU-A800", "style": "sketch"},
        files={"input_image": ("demo.jpg", src, "image/jpeg")},
    )
    body = r.json()
    assert body["code"] == 0 and body["msg"] == "success" and isinstance(body["data"]["task_id"], int)
    seen = haiyi_wait(client, sim, body["data"]["task_id"])
    statuses = [s["data"]["status"] for s in seen]
    assert statuses[-1] == "success" and set(statuses) <= {"pending", "running", "success"}
    running = [s["data"]["progress"] for s in seen if s["data"]["status"] == "running"]
    assert running and all(set(p["curr_node"]) == {"id", "title", "progress"} for p in running)
    totals = [p["total_progress"] for p in running]
    assert totals == sorted(totals) and all(isinstance(x, int) for x in totals)
    out = seen[-1]["data"]["outputs"]
    assert [o["error_type"] for o in out] == ["info"]
    assert out[0]["output"].startswith(f"{sim.url}/api/view?type=output&filename=")
    img = decode(client.get(out[0]["output"]).content)
    assert img.size == (300, 400) and mean_diff(img, decode(src)) > 10
    # the same task is visible through the raw workflow route
    raw = client.get(f"{sim.url}/openapi/v1/workflow/task/{body['data']['task_id']}").json()
    assert raw["data"]["status"] == "success"


def test_haiyi_validation_is_code_in_http_200(sim, client):
    r = client.post(f"{sim.url}/openapi/v1/workflow/apps/run", data={"cluster_name": "GPU-A800"})
    assert r.status_code == 200 and r.json()["code"] != 0 and "workflow_id" in r.json()["msg"]
    r = client.post(f"{sim.url}/openapi/v1/workflow/apps/run", data={"workflow_id": "1"})
    assert r.status_code == 200 and r.json()["code"] != 0 and "cluster_name" in r.json()["msg"]
    for cluster in ("GPU-NOPE", "GPU-H20"):
        r = client.post(f"{sim.url}/openapi/v1/workflow/apps/run", data={"workflow_id": "1", "cluster_name": cluster})
        assert r.status_code == 200 and r.json()["code"] != 0 and "not active" in r.json()["msg"]
    r = client.post(
        f"{sim.url}/openapi/v1/workflow/task/submit", content=b"[oops", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200 and r.json()["code"] == 400
    r = client.get(f"{sim.url}/openapi/v1/workflow/apps/task/99999")
    assert r.status_code == 200 and r.json()["code"] == 404
    r = client.get(f"{sim.url}/openapi/v1/nope")
    assert r.status_code == 404
    assert sim.record() == []


def test_haiyi_clusters_match_the_docs(sim, client):
    data = client.get(f"{sim.url}/openapi/v1/workflow/cluster/all_active_clusters_status").json()["data"]
    names = [c["name"] for c in data]
    assert names[:3] == ["GPU-4090", "GPU-A800", "GPU-A800x2"]
    assert any(c["max_nodes"] == -1 for c in data)
    assert all(set(c) == {"name", "display_name", "curr_nodes", "max_nodes"} for c in data)


def test_haiyi_workflow_submit_patches_uploaded_file(sim, client):
    src = photo(240, 320)
    name = upload(client, sim, src)["data"]["filename"]
    assert name.endswith(".jpg")
    graph = {
        "73": {"class_type": "LoadImage", "inputs": {"image": name}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "pixel art", "clip": ["4", 1]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "x"}},
    }
    r = client.post(
        f"{sim.url}/openapi/v1/workflow/task/submit", json={"parameters": {"prompt": graph}, "cluster_name": "GPU-4090"}
    )
    tid = r.json()["data"]["task_id"]
    final = haiyi_wait(client, sim, tid, route="workflow/task")[-1]["data"]
    img = decode(client.get(final["outputs"][0]["output"]).content)
    assert img.size == (240, 320) and mean_diff(img, decode(src)) > 5
    assert sim.record()[0]["image_sha256"] == hashlib.sha256(src).hexdigest()
    assert sim.record()[0]["endpoint"] == "workflow.submit"


def test_haiyi_generate_image_with_signed_upload(sim, client):
    src = photo(360, 240)
    up = upload(client, sim, src, route="file/upload")
    assert up["success"] is True and up["file_size"] == len(src) and "sig=" in up["url"]
    r = client.post(
        f"{sim.url}/openapi/v1/generate/image",
        json={
            "model": {"provider": "google", "model": "gemini-3-pro-image-preview", "type": "image2image"},
            "parameters": {"prompt": "把草莓改成苹果", "images": [up["url"]]},
        },
    )
    body = r.json()
    assert set(body) == {"task_id", "status", "message"} and isinstance(body["task_id"], int)
    assert body["status"] == "submitted"
    seen = haiyi_wait(client, sim, body["task_id"], route="generate/result")
    assert {s["status"] for s in seen} <= {"submitted", "running", "success"}
    final = seen[-1]
    assert set(final) == {"task_id", "status", "progress", "outputs"} and final["progress"] == 100
    assert final["outputs"][0]["type"] == "image"
    img = decode(client.get(final["outputs"][0]["url"]).content)
    assert img.size == (360, 240)
    # a foreign URL is never fetched
    r = client.post(
        f"{sim.url}/openapi/v1/generate/image",
        json={
            "model": {"provider": "p", "model": "m", "type": "image2image"},
            "parameters": {"prompt": "x", "images": ["https://example.com/x.png"]},
        },
    )
    assert r.status_code == 200 and r.json()["code"] != 0
    # text2image needs no image
    r = client.post(
        f"{sim.url}/openapi/v1/generate/image",
        json={"model": {"provider": "p", "model": "m", "type": "text2image"}, "parameters": {"prompt": "FAIL"}},
    )
    final = haiyi_wait(client, sim, r.json()["task_id"], route="generate/result")[-1]
    assert final["status"] == "failed" and final["message"] and final["outputs"] == []


def test_failing_prompt_haiyi(sim, client):
    r = client.post(
        f"{sim.url}/openapi/v1/workflow/apps/run",
        data={"workflow_id": "1", "cluster_name": "GPU-4090", "prompt": "FAIL"},
    )
    final = haiyi_wait(client, sim, r.json()["data"]["task_id"])[-1]["data"]
    assert final["status"] == "fail" and final["outputs"][0]["error_type"] == "error"


# ------------------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize("kind", FAILURE_KINDS)
@pytest.mark.parametrize("platform", ["easyai", "haiyi"])
def test_failure_kinds(make_sim, client, kind, platform):
    sim = make_sim(fail_rate=1.0, failure_kinds=(kind,), retry_after_s=2.5)
    if platform == "easyai":
        send = lambda: client.post(
            f"{sim.url}/v1/ai/generations", json={"params": {"positive": "x"}, "options": {"workflow_name": "w"}}
        )
    else:
        send = lambda: client.post(
            f"{sim.url}/openapi/v1/workflow/apps/run", data={"workflow_id": "1", "cluster_name": "GPU-A800"}
        )
    if kind == "drop":
        with pytest.raises(httpx.RemoteProtocolError):
            send()
    else:
        r = send()
        if kind == "500" or (kind == "code" and platform == "easyai"):
            assert r.status_code == 500 and r.json()
        elif kind in ("502html", "504html"):
            assert r.status_code == int(kind[:3]) and r.headers["content-type"].startswith("text/html")
            assert b"nginx" in r.content
        elif kind == "503":
            assert r.status_code == 503 and r.json()
        elif kind == "429":
            assert r.status_code == 429 and r.headers["Retry-After"] == "2.5"
        elif kind == "empty":
            assert r.status_code == 502 and r.content == b""
        elif kind == "code":
            assert r.status_code == 200 and r.json()["code"] == 10001 and r.json()["msg"] == "system busy"
    assert sim.record() == [] and sim.tasks() == []
    # control routes and downloads never fail on purpose
    assert client.get(f"{sim.url}/_sim/health").status_code == 200


def test_failure_injection_is_seeded_and_mixed(make_sim):
    def run() -> list[int]:
        sim = make_sim(fail_rate=0.5, seed=7, failure_kinds=("500", "503", "429"))
        with httpx.Client(headers=AUTH) as c:
            return [
                c.get(f"{sim.url}/openapi/v1/workflow/cluster/all_active_clusters_status").status_code
                for _ in range(30)
            ]

    a, b = run(), run()
    assert a == b and {200, 500, 503, 429} <= set(a)


def test_drop_after_accept_records_the_task(make_sim, client):
    sim = make_sim(drop_after_accept_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(f"{sim.url}/v1/ai/generations", json=AI_BODY)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(f"{sim.url}/openapi/v1/workflow/apps/run", data={"workflow_id": "1", "cluster_name": "GPU-A800"})
    rec = sim.record()
    assert [(r["platform"], r["reply_dropped"]) for r in rec] == [("easyai", True), ("haiyi", True)]
    sim.configure(drop_after_accept_rate=0.0)
    # the task really exists and finishes: a client that knew the id could fetch it
    assert easyai_wait(client, sim, rec[0]["task_id"])[-1]["status"] == "success"


def test_record_contents(sim, client):
    src = photo()
    edits(client, sim, src)
    t = easyai_submit(client, sim)
    rec = sim.record()
    assert [set(r) for r in rec] == [{"platform", "endpoint", "task_id", "image_sha256", "ts", "reply_dropped"}] * 2
    assert rec[0]["platform"] == "easyai" and rec[0]["endpoint"] == "images.edits"
    assert rec[0]["image_sha256"] == hashlib.sha256(src).hexdigest() and rec[0]["reply_dropped"] is False
    assert rec[1]["task_id"] == t["task_id"] and rec[1]["ts"] >= rec[0]["ts"]
    assert client.get(f"{sim.url}/_sim/record").json() == rec


def test_upload_over_limit_gets_html_413(make_sim, client):
    sim = make_sim(max_upload_bytes=50_000)
    big = os.urandom(120_000)
    r = client.post(f"{sim.url}/v1/images/edits", files={"image": ("big.jpg", big, "image/jpeg")}, data={"model": "m"})
    assert r.status_code == 413 and r.headers["content-type"].startswith("text/html") and b"413" in r.content
    r = client.post(f"{sim.url}/openapi/v1/workflow/upload/file", files={"file": ("big.jpg", big, "image/jpeg")})
    assert r.status_code == 413
    assert sim.record() == []
    assert edits(client, sim, photo(64, 48)).json()["status"] == "success"  # small ones still work


# ------------------------------------------------------------------------------------------------- downloads


def test_signed_url_expiry_and_forgery(make_sim, client):
    sim = make_sim(url_ttl_s=0.5)
    url = edits(client, sim).json()["data"][0]["url"]
    assert client.get(url).status_code == 200
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    forged = url.replace(q["sig"][0], "0" * 32)
    r = client.get(forged)
    assert r.status_code == 403 and b"SignatureDoesNotMatch" in r.content
    assert "." in q["expires"][0]  # a sub-second lifetime is kept to the millisecond
    r = client.get(url.replace(f"expires={q['expires'][0]}", f"expires={float(q['expires'][0]) + 999:.3f}"))
    assert r.status_code == 403  # extending the expiry breaks the signature
    time.sleep(max(0.0, float(q["expires"][0]) - time.time()) + 0.1)
    r = client.get(url)
    assert r.status_code == 403 and r.headers["content-type"] == "application/xml"
    assert b"<Code>AccessDenied</Code>" in r.content and b"expired" in r.content
    r = client.get(f"{sim.url}/files/00000000.png?expires=1&sig=x")
    assert r.status_code == 404 and b"NoSuchKey" in r.content


def test_comfyui_view_routes(sim, client):
    src = photo(200, 100)
    name = upload(client, sim, src)["data"]["filename"]
    for route in ("/view", "/api/view"):
        r = httpx.get(f"{sim.url}{route}", params={"filename": name, "subfolder": "", "type": "input"})
        assert r.status_code == 200 and r.content == src
    assert httpx.get(f"{sim.url}/view", params={"filename": "nope.png", "type": "output"}).status_code == 404


# ------------------------------------------------------------------------------------------------- quirks


def test_every_quirk_is_tested():
    tested = {n[len("test_quirk_") :] for n in globals() if n.startswith("test_quirk_")}
    assert tested == set(QUIRKS)


def test_quirk_wrap_data(make_sim, client):
    sim = make_sim(quirks={"wrap_data"})
    r = client.post(f"{sim.url}/v1/ai/generations", json=AI_BODY)
    body = r.json()
    assert list(body) == ["data"] and body["data"]["status"] == "submitted"
    final = easyai_wait(client, sim, body["data"]["task_id"])[-1]
    assert final["status"] == "success"
    raw = client.get(f"{sim.url}/v1/ai/result/{body['data']['task_id']}").json()
    assert list(raw) == ["data"] and raw["data"]["output"]
    assert list(edits(client, sim).json()) == ["data"]


def test_quirk_comfy_view_urls(make_sim, client):
    sim = make_sim(quirks={"comfy_view_urls"})
    url = edits(client, sim).json()["data"][0]["url"]
    assert url.startswith("/view?filename=") and url.endswith("&subfolder=&type=output")
    assert decode(client.get(sim.url + url).content).size == (400, 300)


def test_quirk_text_output(make_sim, client):
    sim = make_sim(quirks={"text_output"})
    final = easyai_wait(client, sim, easyai_submit(client, sim, "describe me")["task_id"])[-1]
    assert final["type"] == "text" and final["output"]
    assert all(isinstance(o, str) and not o.startswith(("http", "/")) for o in final["output"])


def test_quirk_string_task_ids(make_sim, client):
    sim = make_sim(quirks={"string_task_ids"})
    r = client.post(f"{sim.url}/openapi/v1/workflow/apps/run", data={"workflow_id": "1", "cluster_name": "GPU-A800"})
    tid = r.json()["data"]["task_id"]
    assert isinstance(tid, str) and tid.startswith("t-")
    assert haiyi_wait(client, sim, tid)[-1]["data"]["status"] == "success"
    r = client.post(
        f"{sim.url}/openapi/v1/generate/image",
        json={"model": {"provider": "p", "model": "m", "type": "text2image"}, "parameters": {"prompt": "x"}},
    )
    assert isinstance(r.json()["task_id"], str)
    assert haiyi_wait(client, sim, r.json()["task_id"], route="generate/result")[-1]["task_id"] == r.json()["task_id"]


def test_quirk_node_warnings(make_sim, client):
    sim = make_sim(quirks={"node_warnings"})
    r = client.post(
        f"{sim.url}/openapi/v1/workflow/apps/run",
        data={"workflow_id": "1", "cluster_name": "GPU-A800"},
        files={"input_image": ("a.jpg", photo(), "image/jpeg")},
    )
    final = haiyi_wait(client, sim, r.json()["data"]["task_id"])[-1]["data"]
    assert final["status"] == "success"
    kinds = [o["error_type"] for o in final["outputs"]]
    assert sorted(kinds) == ["error", "info", "warning"]
    media = [o["output"] for o in final["outputs"] if o["error_type"] == "info"]
    assert client.get(media[0]).status_code == 200


def test_quirk_bare_filenames(make_sim, client):
    sim = make_sim(quirks={"bare_filenames"})
    r = client.post(
        f"{sim.url}/openapi/v1/workflow/apps/run",
        data={"workflow_id": "1", "cluster_name": "GPU-A800"},
        files={"input_image": ("a.jpg", photo(), "image/jpeg")},
    )
    out = haiyi_wait(client, sim, r.json()["data"]["task_id"])[-1]["data"]["outputs"][0]["output"]
    assert "/" not in out and out.endswith(".png")
    d = httpx.get(f"{sim.url}/api/view", params={"type": "output", "filename": out})
    assert d.status_code == 200 and decode(d.content).size == (400, 300)


def test_quirk_progress_missing(make_sim, client):
    sim = make_sim(quirks={"progress_missing"}, latency=0.3)
    e = client.get(f"{sim.url}/v1/ai/result/{easyai_submit(client, sim)['task_id']}").json()
    r = client.post(f"{sim.url}/openapi/v1/workflow/apps/run", data={"workflow_id": "1", "cluster_name": "GPU-A800"})
    h = client.get(f"{sim.url}/openapi/v1/workflow/apps/task/{r.json()['data']['task_id']}").json()["data"]
    r = client.post(
        f"{sim.url}/openapi/v1/generate/image",
        json={"model": {"provider": "p", "model": "m", "type": "text2image"}, "parameters": {"prompt": "x"}},
    )
    g = client.get(f"{sim.url}/openapi/v1/generate/result/{r.json()['task_id']}").json()
    assert "progress" not in e and "progress" not in h and "progress" not in g
    assert e["status"] and h["status"] and g["status"]


def test_quirk_no_time_remained(make_sim, client):
    sim = make_sim(quirks={"no_time_remained"}, latency=0.3)
    e = client.get(f"{sim.url}/v1/ai/result/{easyai_submit(client, sim)['task_id']}").json()
    assert e["status"] and "time_remained" not in e and "progress" in e


def test_quirk_progress_garbage(make_sim, client):
    sim = make_sim(quirks={"progress_garbage"}, latency=0.3)
    tid = easyai_submit(client, sim)["task_id"]
    e = [client.get(f"{sim.url}/v1/ai/result/{tid}").json()["progress"] for _ in range(4)]
    r = client.post(f"{sim.url}/openapi/v1/workflow/apps/run", data={"workflow_id": "1", "cluster_name": "GPU-A800"})
    h = [
        client.get(f"{sim.url}/openapi/v1/workflow/apps/task/{r.json()['data']['task_id']}").json()["data"]["progress"]
        for _ in range(3)
    ]
    for p in e + h:
        assert not isinstance(p, (int, float)) or isinstance(p, bool)
        if isinstance(p, dict):
            assert not isinstance(p.get("total_progress"), (int, float))
    assert "94%" in e and None in e and "94%" in h


def test_quirk_inactive_cluster(make_sim, client):
    sim = make_sim(quirks={"inactive_cluster"})
    data = client.get(f"{sim.url}/openapi/v1/workflow/cluster/all_active_clusters_status").json()["data"]
    assert data[0]["curr_nodes"] == 0 and data[0]["max_nodes"] == 0
    r = client.post(
        f"{sim.url}/openapi/v1/workflow/apps/run", data={"workflow_id": "1", "cluster_name": data[0]["name"]}
    )
    assert r.status_code == 200 and r.json()["code"] != 0 and "not active" in r.json()["msg"]
    assert sim.record() == []


def test_quirk_octet_stream(make_sim, client):
    sim = make_sim(quirks={"octet_stream"})
    d = client.get(edits(client, sim).json()["data"][0]["url"])
    assert d.headers["content-type"] == "application/octet-stream" and decode(d.content).format == "PNG"


def test_quirk_html_download(make_sim, client):
    sim = make_sim(quirks={"html_download"})
    d = client.get(edits(client, sim).json()["data"][0]["url"])
    assert d.status_code == 200 and d.headers["content-type"].startswith("text/html")
    assert "expired" in d.text


def test_quirk_huge_output(make_sim, client):
    sim = make_sim(quirks={"huge_output"})
    d = client.get(edits(client, sim, photo(200, 150)).json()["data"][0]["url"])
    assert len(d.content) > 3 * 1024 * 1024 and int(d.headers["content-length"]) == len(d.content)
    assert decode(d.content).size == (200, 150)  # still a valid picture


def test_quirk_expire_fast(make_sim, client):
    sim = make_sim(quirks={"expire_fast"}, url_ttl_s=3600)
    t = easyai_submit(client, sim)
    final = easyai_wait(client, sim, t["task_id"])[-1]
    expires = int(urllib.parse.parse_qs(urllib.parse.urlsplit(final["output"][0]).query)["expires"][0])
    assert expires - time.time() < 2.5  # the default: 1 s after the finish, in whole seconds
    sim.configure(expire_fast_s=0.3)  # the lifetime is a knob, so the wait below is short
    t = easyai_submit(client, sim)
    url = easyai_wait(client, sim, t["task_id"])[-1]["output"][0]
    expires_ms = float(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["expires"][0])
    assert expires_ms - time.time() < 0.8
    time.sleep(max(0.0, expires_ms - time.time()) + 0.1)
    assert client.get(url).status_code == 403


# ------------------------------------------------------------------------------------------------- lifecycle


def test_stop_start_same_port_keeps_state(make_sim, client):
    sim = make_sim(latency=0.2)
    port = sim.port
    t = easyai_submit(client, sim)
    keepalive = httpx.Client(headers=AUTH, timeout=5)
    assert keepalive.get(f"{sim.url}/_sim/health").status_code == 200  # an open keep-alive connection
    t0 = time.time()
    sim.stop()
    assert time.time() - t0 < 2
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/_sim/health", timeout=2)
    with pytest.raises(httpx.TransportError):
        keepalive.get(f"http://127.0.0.1:{port}/_sim/health")
    time.sleep(0.3)  # the GPU kept working during the outage
    assert sim.start() == f"http://127.0.0.1:{port}"
    final = easyai_wait(client, sim, t["task_id"])[-1]
    assert final["status"] == "success" and client.get(final["output"][0]).status_code == 200
    assert len(sim.record()) == 1
    keepalive.close()


def test_stop_does_not_hang_on_a_waiting_sync_request(make_sim):
    sim = make_sim(latency=30)
    errors = []

    def call():
        try:
            with httpx.Client(headers=AUTH, timeout=10) as c:
                edits(c, sim)
        except httpx.TransportError as e:
            errors.append(e)

    th = threading.Thread(target=call)
    th.start()
    deadline = time.time() + 5
    while not sim.tasks() and time.time() < deadline:
        time.sleep(0.02)
    t0 = time.time()
    sim.stop()
    th.join(5)
    assert time.time() - t0 < 2 and not th.is_alive() and errors


def test_control_routes(sim, client):
    h = httpx.get(f"{sim.url}/_sim/health").json()
    assert h["ok"] is True and h["url"] == sim.url
    r = httpx.post(
        f"{sim.url}/_sim/config",
        json={"quirks": ["wrap_data", "octet_stream"], "latency": 0.05, "failure_kinds": ["503"]},
    )
    assert r.status_code == 200 and r.json()["quirks"] == ["octet_stream", "wrap_data"]
    assert sim.cfg.quirks == {"wrap_data", "octet_stream"} and sim.cfg.latency == 0.05
    assert "sk-test" not in r.text  # keys are never shown
    assert httpx.post(f"{sim.url}/_sim/config", json={"quirks": ["nope"]}).status_code == 400
    assert httpx.post(f"{sim.url}/_sim/config", json={"bogus": 1}).status_code == 400
    assert httpx.post(f"{sim.url}/_sim/config", json={"port": 1}).status_code == 400
    assert httpx.post(f"{sim.url}/_sim/config", content=b"nope").status_code == 400
    assert list(
        client.post(
            f"{sim.url}/v1/ai/generations", json={"params": {"positive": "x"}, "options": {"workflow_name": "w"}}
        ).json()
    ) == ["data"]
    assert httpx.get(f"{sim.url}/_sim/record").json() == sim.record() and len(sim.record()) == 1
    assert httpx.get(f"{sim.url}/_sim/tasks").json()[0]["state"] in ("running", "success")


def test_configure_validates(sim):
    with pytest.raises(ValueError):
        sim.configure(quirks={"nope"})
    with pytest.raises(ValueError):
        sim.configure(fail_rate=2)
    with pytest.raises(ValueError):
        sim.configure(nonsense=1)
    assert sim.configure(quirks=["wrap_data"]).quirks == frozenset({"wrap_data"})


def test_run_forever_subprocess():
    code = (
        "from agent.simulator import run_forever, SimConfig; "
        "run_forever(SimConfig(port=0, api_keys=('k',), latency=0.05, quirks=frozenset({'wrap_data'})))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("simulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert httpx.get(f"{url}/_sim/health").json()["ok"] is True
        assert httpx.get(f"{url}/_sim/config").json()["quirks"] == ["wrap_data"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


# ------------------------------------------------------------------------------------------------- robustness


def test_few_hundred_concurrent_tasks(make_sim):
    sim = make_sim(workers=4, latency=0.01)
    n = 240
    small = photo(64, 48)
    data_url = "data:image/jpeg;base64," + base64.b64encode(small).decode()

    # one shared client (it is thread-safe), as an agent would use; 60 booths at once
    c = httpx.Client(headers=AUTH, timeout=30, limits=httpx.Limits(max_connections=60))

    def one(i: int) -> str:
        if i % 2:
            t = easyai_submit(c, sim, f"task {i}", image=data_url)
            return easyai_wait(c, sim, t["task_id"], timeout=30)[-1]["status"]
        r = c.post(
            f"{sim.url}/openapi/v1/workflow/apps/run",
            data={"workflow_id": "w", "cluster_name": "GPU-4090"},
            files={"input_image": ("s.jpg", small, "image/jpeg")},
        )
        return haiyi_wait(c, sim, r.json()["data"]["task_id"], timeout=30)[-1]["data"]["status"]

    t0 = time.time()
    with c, ThreadPoolExecutor(60) as pool:
        results = list(pool.map(one, range(n)))
    assert results.count("success") == n
    assert len(sim.record()) == n and len({r["task_id"] for r in sim.record()}) == n
    assert time.time() - t0 < 30
    ends = sorted((t["start"], t["end"]) for t in sim.tasks())
    for _i, (start, _) in enumerate(ends):  # never more than `workers` at once
        assert sum(1 for s, e in ends if s <= start < e) <= 4


ROUTES = [
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos/generations",
    "/v1/ai/generations",
    "/openapi/v1/workflow/apps/run",
    "/openapi/v1/workflow/upload/file",
    "/openapi/v1/file/upload",
    "/openapi/v1/workflow/task/submit",
    "/openapi/v1/generate/image",
]
_fuzz: dict[str, object] = {}


def _shared_sim() -> tuple[Simulator, httpx.Client]:
    if "sim" not in _fuzz:
        _fuzz["sim"] = Simulator(SimConfig(latency=0.0))
        _fuzz["sim"].start()
        _fuzz["client"] = httpx.Client(timeout=10)
    return _fuzz["sim"], _fuzz["client"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.text(max_size=10), ch, max_size=4),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    route=st.sampled_from(ROUTES),
    body=st.one_of(
        st.binary(max_size=300),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {
                "params": json_values,
                "options": json_values,
                "model": json_values,
                "parameters": json_values,
                "content": json_values,
                "cluster_name": json_values,
            }
        ).map(lambda v: json.dumps(v).encode()),
    ),
    ctype=st.sampled_from(
        [
            "application/json",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data",
            "application/x-www-form-urlencoded",
            "text/plain",
            "",
        ]
    ),
)
def test_garbage_never_crashes_the_server(route, body, ctype):
    sim, c = _shared_sim()
    r = c.post(f"{sim.url}{route}", content=body, headers={**AUTH, "Content-Type": ctype})
    assert r.status_code < 500, (route, body, ctype, r.text)
    assert c.get(f"{sim.url}/_sim/health").status_code == 200


def test_garbage_multipart_fields(sim, client):
    files = [
        ("image", ("a.jpg", b"\xff\xd8garbage", "image/jpeg")),
        ("n", (None, "1e999")),
        ("resolution", (None, "NaNK")),
        ("model", (None, "x")),
    ]
    r = client.post(f"{sim.url}/v1/images/edits", files=files)
    assert r.status_code == 400
    r = client.post(
        f"{sim.url}/v1/images/edits",
        files=[("image", ("a.jpg", photo(), "image/jpeg")), ("n", (None, "1e999")), ("model", (None, "x"))],
    )
    assert r.status_code == 400 and "n must be a number" in r.json()["message"]


@pytest.fixture(scope="module", autouse=True)
def _close_fuzz_sim():
    yield
    if "sim" in _fuzz:
        _fuzz.pop("client").close()
        _fuzz.pop("sim").close()


def test_quirk_no_file_upload(make_sim, client):
    sim = make_sim(quirks={"no_file_upload"})
    img = _tiny_jpeg()
    r = client.post(f"{sim.url}/openapi/v1/file/upload", files={"file": ("a.jpg", img, "image/jpeg")})
    assert r.status_code == 404 and r.json()["code"] == 404
    assert upload(client, sim, img)["data"]["filename"]  # the workflow upload route stays


def test_reject_polls_drops_queued_tasks_with_rejected(make_sim, client):
    sim = make_sim(reject_polls=1, latency=5)
    first = easyai_submit(client, sim)["task_id"]
    second = easyai_submit(client, sim)["task_id"]
    for _ in range(2):  # a dropped task stays rejected
        assert client.get(f"{sim.url}/v1/ai/result/{first}").json()["status"] == "rejected"
    assert client.get(f"{sim.url}/v1/ai/result/{second}").json()["status"] in ("submitted", "started")


def test_received_describes_parts_json_and_pictures(sim, client):
    img = _tiny_jpeg()
    client.post(
        f"{sim.url}/v1/images/edits",
        data={"model": "cartoon", "prompt": "p"},
        files=[("image[]", ("a.jpg", img, "image/jpeg")), ("image[]", ("b.jpg", img, "image/jpeg"))],
    )
    easyai_submit(client, sim, image="data:image/jpeg;base64," + base64.b64encode(img).decode())
    edits_in, ai_in = sim.received()[-2:]
    assert edits_in["endpoint"] == "images.edits" and edits_in["fields"] == {"model": "cartoon", "prompt": "p"}
    assert [(p["name"], p["image"], p["format"]) for p in edits_in["parts"]] == [("image[]", [40, 30], "JPEG")] * 2
    assert ai_in["json"]["params"]["image"]["image"] == [40, 30]
    assert httpx.get(f"{sim.url}/_sim/received").json()[-1]["endpoint"] == "ai.generations"


def _tiny_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(buf, "JPEG")
    return buf.getvalue()
