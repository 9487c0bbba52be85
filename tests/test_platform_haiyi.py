"""HaiyiClient against the built-in simulator over real HTTP: every quirk and every error class of PLATFORMS.md."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from agent.config import HaiyiPlatformConfig, ProfileConfig, ThirdPartyModel, make_profile
from agent.platforms.base import AuthError, PermanentError, SubmitRequest, TaskStatus, TransientError
from agent.platforms.haiyi import Cluster, choose_cluster
from tests.support.platform import ClientMaker, platform_sim, sim_defaults
from tests.support.platform import jpeg as support_jpeg

KEY = "AI-haiyi-5e1b77-SECRET"
DEFAULTS = sim_defaults(KEY)


@pytest.fixture(scope="module")
def sim():
    with platform_sim(KEY, seed=2) as s:
        yield s


@pytest.fixture(autouse=True)
def _reset(sim):
    yield
    sim.configure(**DEFAULTS)


@pytest.fixture
def client_for(sim):
    """Build clients against the simulator (or another URL); all closed at the end of the test."""
    maker = ClientMaker(sim, HaiyiPlatformConfig, "haiyi", "hy", KEY)
    yield maker
    maker.close()


def jpeg(w: int = 96, h: int = 64) -> bytes:
    return support_jpeg(w, h, (30, 120, 200))


def apps(cluster: str | None = "GPU-4090", **kw) -> ProfileConfig:
    return make_profile(name="tryon", platform="hy", endpoint="apps.run", workflow_id="1234", cluster=cluster, **kw)


def request(prof: ProfileConfig, prompt: str | None = "a summer dress", params=None, image: bytes | None = None):
    return SubmitRequest(image or jpeg(), "job-1.jpg", prof, prompt, dict(params or {}))


def run(client, task_id: str, prof: ProfileConfig, timeout: float = 15.0) -> list[TaskStatus]:
    seen: list[TaskStatus] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = client.poll(task_id, prof.endpoint)
        seen.append(st)
        if st.finished:
            return seen
        time.sleep(0.04)
    raise AssertionError(f"task {task_id} did not finish: {seen[-1:]}")


def submit_and_run(client, prof: ProfileConfig, **kw) -> tuple[str, list[TaskStatus]]:
    result = client.submit(request(prof, **kw))
    assert result.status is None and isinstance(result.task_id, str)
    return result.task_id, run(client, result.task_id, prof)


def assert_image(path: Path, size: int) -> None:
    assert path.stat().st_size == size > 0
    with Image.open(path) as im:
        im.load()
        assert im.width > 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------- apps.run


def test_apps_run_with_files_and_params_downloads_a_real_image(sim, client_for, tmp_path):
    garment = tmp_path / "dress01.png"
    Image.new("RGB", (32, 32), "green").save(garment)
    prof = apps(files={"garment_image": garment}, params={"resolution": "1K", "strength": 0.6, "hd": True})
    client = client_for()
    photo = jpeg()
    task_id, seen = submit_and_run(client, prof, params=prof.params, image=photo)
    assert task_id.isdigit()  # an integer id on the wire, a string here
    assert all(s.progress is None or 0 <= s.progress <= 100 for s in seen)
    assert any(s.state == "running" and s.progress is not None for s in seen)
    final = seen[-1]
    assert final.state == "success" and final.progress == 100 and final.warnings == []
    out = final.outputs[0]
    assert out.type == "image" and out.title == "Save Image" and "/api/view?type=output&filename=" in out.url
    dl = client.download(out, tmp_path / "out" / "result-1")
    assert (dl.type, dl.content_type, dl.path.suffix) == ("image", "image/png", ".png")
    assert_image(dl.path, dl.size)
    task = next(t for t in sim.tasks() if str(t["task_id"]) == task_id)
    assert task["image_sha256"] == hashlib.sha256(photo).hexdigest()  # the photo went first, as image_field
    assert "a summer dress" in task["prompt"] and "0.6" in task["prompt"] and "true" in task["prompt"]


def test_cluster_auto_picks_the_active_cluster_with_most_spare_capacity(sim, client_for):
    sim.configure(quirks={"inactive_cluster"})
    client = client_for()
    prof = apps(cluster="auto")
    assert client.cluster_for(prof.cluster) == "GPU-4090"  # 20 spare; GPU-H20 (0/0) listed first is skipped
    assert client.cluster_for(apps(cluster=None).cluster) == "GPU-4090"
    _, seen = submit_and_run(client, prof)
    assert seen[-1].state == "success"


def test_choosing_among_clusters():
    known = Cluster("A800", 8, 21)  # 13 spare
    roomy = Cluster("4090", 2, 22)  # 20 spare
    unknown = Cluster("A800x8", 0, -1)
    full = Cluster("A800x2", 6, 6)
    off = Cluster("H20", 0, 0)
    assert choose_cluster([off, known, roomy, unknown, full]) == roomy
    assert choose_cluster([off, unknown, full]) == unknown  # unknown-but-active beats a full one
    assert choose_cluster([off, full]) == full
    assert choose_cluster([off]) is None and choose_cluster([]) is None


def test_a_named_cluster_that_is_not_active_is_transient(sim, client_for):
    sim.configure(quirks={"inactive_cluster"})
    with pytest.raises(TransientError) as e:
        client_for().submit(request(apps(cluster="GPU-H20")))
    assert "10003" in str(e.value) and "not active" in str(e.value)


def test_string_task_ids(sim, client_for):
    sim.configure(quirks={"string_task_ids"})
    client = client_for()
    task_id, seen = submit_and_run(client, apps())
    assert task_id.startswith("t-") and seen[-1].state == "success"


@pytest.mark.parametrize("quirk", ["progress_missing", "progress_garbage"])
def test_missing_or_garbage_progress_is_none(sim, client_for, quirk):
    sim.configure(quirks={quirk}, latency=0.6)
    for prof in (
        apps(),
        make_profile(
            name="g", platform="hy", endpoint="generate.image", model=ThirdPartyModel(provider="google", model="gemini")
        ),
    ):
        _, seen = submit_and_run(client_for(), prof)
        unfinished = [s for s in seen if not s.finished]
        assert len(unfinished) >= 3
        assert all(s.progress is None for s in unfinished)
        assert seen[-1].state == "success"


def test_node_warnings_are_separated_from_media(sim, client_for, tmp_path):
    sim.configure(quirks={"node_warnings"})
    client = client_for()
    _, seen = submit_and_run(client, apps())
    final = seen[-1]
    assert final.state == "success" and [o.type for o in final.outputs] == ["image"]
    assert len(final.warnings) == 2
    assert final.warnings[0].startswith("FaceDetailer: Warning: no face detected")
    assert "CUDA out of memory" in final.warnings[1]
    assert client.download(final.outputs[0], tmp_path / "r").type == "image"


def test_bare_filenames_resolve_to_api_view_and_download(sim, client_for, tmp_path):
    sim.configure(quirks={"bare_filenames"})
    client = client_for(base_url=sim.url + "/")
    _, seen = submit_and_run(client, apps())
    out = seen[-1].outputs[0]
    assert out.url.startswith(sim.url + "/api/view?type=output&filename=HAIYI_")
    assert out.type == "image"
    dl = client.download(out, tmp_path / "r")
    assert_image(dl.path, dl.size)


def test_fail_prompt_gives_a_failed_status_with_the_node_error(client_for):
    _, seen = submit_and_run(client_for(), apps(), prompt="FAIL please")
    final = seen[-1]
    assert final.state == "failed" and final.outputs == []
    assert "Exception: simulated failure" in final.message and "KSampler" in final.message


@pytest.mark.parametrize(
    "quirk, check",
    [
        ("octet_stream", "sniffed"),
        ("html_download", "text/html"),
        ("huge_output", "output larger than 1 MB"),
    ],
)
def test_download_quirks(sim, client_for, tmp_path, quirk, check):
    if quirk == "huge_output":
        sim.configure(quirks={quirk})
    client = client_for(max_download_mb=1)
    _, seen = submit_and_run(client, apps())
    sim.configure(quirks={quirk})
    if check == "sniffed":
        dl = client.download(seen[-1].outputs[0], tmp_path / "r")
        assert (dl.content_type, dl.path.suffix) == ("image/png", ".png")
        assert_image(dl.path, dl.size)
        return
    with pytest.raises(PermanentError) as e:
        client.download(seen[-1].outputs[0], tmp_path / "r")
    assert check in str(e.value) and e.value.kind == "output"
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------- errors


def test_wrong_key_is_an_auth_error_without_the_key_anywhere(client_for, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "AI-wrong-c0ffee-SECRET"
    client = client_for(key=wrong)
    with pytest.raises(AuthError) as e:
        client.submit(request(apps()))
    assert e.value.status == 401 and e.value.kind == "auth" and "unauthorized" in str(e.value)
    with pytest.raises(AuthError):
        client.cluster_for(apps(cluster="auto").cluster)
    for text in (str(e.value), repr(e.value), repr(client), caplog.text):
        assert wrong not in text and KEY not in text


@pytest.mark.parametrize(
    "kind, status, needle",
    [
        ("500", 500, "internal server error"),
        ("502html", 502, "502 Bad Gateway"),
        ("504html", 504, "504 Gateway Time-out"),
        ("503", 503, "service unavailable"),
        ("429", 429, "too many requests"),
        ("empty", 502, "(empty body)"),
        ("drop", None, "no answer"),
    ],
)
def test_each_failure_kind_is_transient_with_status_and_reason(sim, client_for, caplog, kind, status, needle):
    caplog.set_level(logging.DEBUG)
    sim.configure(fail_rate=1.0, failure_kinds=(kind,), retry_after_s=3)
    client = client_for()
    with pytest.raises(TransientError) as e:
        client.submit(request(apps()))
    err = e.value
    assert err.status == status and needle in str(err) and len(str(err)) < 200
    assert err.retry_after == (3.0 if kind == "429" else None)
    with pytest.raises(TransientError):
        client.poll("230", "apps.run")
    assert KEY not in caplog.text and KEY not in str(err)


def test_code_nonzero_busy_is_transient(sim, client_for):
    sim.configure(fail_rate=1.0, failure_kinds=("code",))
    with pytest.raises(TransientError) as e:
        client_for().submit(request(apps()))
    assert str(e.value) == "Haiyi error code 10001: system busy" and e.value.kind == "rejected"


def test_code_nonzero_otherwise_is_permanent(client_for):
    client = client_for()
    with pytest.raises(PermanentError) as e:
        client.poll("999999", "apps.run")  # an unknown task: HTTP 200, code 404
    assert "error code 404" in str(e.value) and "not found" in str(e.value) and not e.value.transient
    with pytest.raises(PermanentError) as e:  # the server refuses a workflow_id it cannot use: code 400
        client.submit(request(apps().model_copy(update={"workflow_id": " "})))
    assert "workflow_id is required" in str(e.value)


def test_no_cancel_endpoint(client_for):
    client = client_for()
    assert client.supports_cancel is False
    with pytest.raises(PermanentError, match="Haiyi has no cancel endpoint"):
        client.cancel("230", "apps.run")


def test_oversized_upload_gets_the_html_413_as_permanent(sim, client_for):
    sim.configure(max_upload_bytes=2_000)
    with pytest.raises(PermanentError) as e:
        client_for().submit(request(apps(), image=jpeg(400, 300)))
    assert e.value.status == 413 and "Request Entity Too Large" in str(e.value)


def test_connection_refused_and_probe(sim, client_for):
    client_for().probe()
    dead = client_for(base_url=f"http://127.0.0.1:{free_port()}", connect_timeout_s=1)
    for call in (dead.probe, lambda: dead.submit(request(apps(cluster="auto")))):
        with pytest.raises(TransientError) as e:
            call()
        assert e.value.kind == "network"


# --------------------------------------------------------------------------------------------- stretch endpoints


def test_workflow_submit_uploads_and_patches_the_comfyui_json(sim, client_for, tmp_path):
    workflow = {
        "73": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "default text", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}},
    }
    wf_file = tmp_path / "tryon_api.json"
    wf_file.write_text(json.dumps(workflow))
    prof = make_profile(
        name="w",
        platform="hy",
        endpoint="workflow.submit",
        workflow_file=wf_file,
        cluster="GPU-A800",
        inputs={"image": "73.inputs.image", "prompt": "6.inputs.text", "seed": "3.inputs.seed"},
        remote_params=["seed"],
    )
    client = client_for()
    photo = jpeg()
    task_id, seen = submit_and_run(client, prof, prompt="red hat", params={"seed": 42}, image=photo)
    final = seen[-1]
    assert final.state == "success"
    dl = client.download(final.outputs[0], tmp_path / "r")
    assert_image(dl.path, dl.size)
    task = next(t for t in sim.tasks() if str(t["task_id"]) == task_id)
    assert task["endpoint"] == "workflow.submit"
    assert task["image_sha256"] == hashlib.sha256(photo).hexdigest()  # the uploaded name was patched into 73
    assert "red hat" in task["prompt"] and "default text" not in task["prompt"]
    assert json.loads(wf_file.read_text()) == workflow  # the file itself is never changed

    bad = prof.model_copy(update={"inputs": {"image": "99.inputs.image"}})
    with pytest.raises(PermanentError, match="99"):
        client.submit(request(bad))


def test_a_task_is_polled_by_the_endpoint_it_was_submitted_with(sim, client_for, tmp_path):
    wf_file = tmp_path / "wf.json"
    wf_file.write_text(json.dumps({"73": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}}}))
    prof = make_profile(
        name="w",
        platform="hy",
        endpoint="workflow.submit",
        workflow_file=wf_file,
        cluster="GPU-A800",
        inputs={"image": "73.inputs.image"},
    )
    client = client_for()
    task_id = client.submit(request(prof)).task_id
    assert task_id
    before = len(sim.requests())
    st = client.poll(task_id, "workflow.submit")  # the endpoint string recorded on the job at submit
    assert st.state in ("pending", "running", "success")
    assert [(r["method"], r["path"]) for r in sim.requests()[before:]] == [
        ("GET", f"/openapi/v1/workflow/task/{task_id}")
    ]
    before = len(sim.requests())
    client.poll(task_id, "apps.run")  # the string decides the route, not any profile
    assert [r["path"] for r in sim.requests()[before:]] == [f"/openapi/v1/workflow/apps/task/{task_id}"]
    with pytest.raises(PermanentError) as e:
        client.poll(task_id, "images.edits")  # an EasyAI endpoint: a bug, never a request
    assert str(e.value) == "Haiyi has no endpoint 'images.edits' (apps.run, workflow.submit, generate.image)"
    assert len(sim.requests()) == before + 1


def test_each_mode_polls_its_own_route(sim, client_for):
    client = client_for()
    routes = {
        "apps.run": "/openapi/v1/workflow/apps/task/",
        "workflow.submit": "/openapi/v1/workflow/task/",
        "generate.image": "/openapi/v1/generate/result/",
    }
    for endpoint, route in routes.items():
        before = len(sim.requests())
        with pytest.raises(PermanentError):
            client.poll("999999", endpoint)  # unknown task: the route is still the mode's own
        assert [r["path"] for r in sim.requests()[before:]] == [route + "999999"]


@pytest.mark.parametrize("quirks", [frozenset(), frozenset({"string_task_ids"})])
def test_generate_image_uploads_then_polls_the_bare_reply(sim, client_for, tmp_path, quirks):
    sim.configure(quirks=quirks)
    prof = make_profile(
        name="g",
        platform="hy",
        endpoint="generate.image",
        model=ThirdPartyModel(provider="google", model="gemini-3-pro-image-preview"),
    )
    client = client_for()
    photo = jpeg()
    task_id, seen = submit_and_run(client, prof, prompt="strawberries into apples", image=photo)
    assert task_id.startswith("t-") if quirks else task_id.isdigit()
    final = seen[-1]
    assert final.state == "success" and final.outputs[0].type == "image"
    dl = client.download(final.outputs[0], tmp_path / "r")
    assert_image(dl.path, dl.size)
    task = next(t for t in sim.tasks() if str(t["task_id"]) == task_id)
    assert task["image_sha256"] == hashlib.sha256(photo).hexdigest()

    _, seen = submit_and_run(client, prof, prompt="FAIL")
    assert seen[-1].state == "failed" and "FAIL" in seen[-1].message


def test_generate_image_signed_url_expired_is_permanent(sim, client_for, tmp_path):
    sim.configure(quirks={"expire_fast"}, expire_fast_s=0.15)
    prof = make_profile(
        name="g", platform="hy", endpoint="generate.image", model=ThirdPartyModel(provider="google", model="gemini")
    )
    client = client_for()
    _, seen = submit_and_run(client, prof)
    expires = float(parse_qs(urlsplit(seen[-1].outputs[0].url).query)["expires"][0])
    time.sleep(max(0.0, expires - time.time()) + 0.05)  # just past the link's own expiry
    with pytest.raises(PermanentError) as e:
        client.download(seen[-1].outputs[0], tmp_path / "r")
    assert not isinstance(e.value, AuthError)
    assert str(e.value) == "output link expired or forbidden (HTTP 403)"
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------- reply shapes the
# simulator never sends (from the docs): parsed straight from literal replies, no network involved


def test_reply_shapes_from_the_docs():
    from agent.platforms.haiyi import payload as _payload
    from agent.platforms.haiyi import task_status as _task_status
    from agent.platforms.session import PlatformHTTP

    http = PlatformHTTP(HaiyiPlatformConfig(kind="haiyi", base_url="https://art.invalid"), None)
    try:
        only_errors = {
            "status": "success",
            "outputs": [{"id": "27", "title": "Upscale", "output": "Error: CUDA out of memory", "error_type": "error"}],
        }
        st = _task_status(only_errors, http)
        assert st.state == "failed" and "Upscale: Error: CUDA out of memory" in st.message
        st = _task_status(
            {
                "status": "success",
                "progress": {"total_progress": 94},
                "outputs": [{"id": "81", "title": "Video Combine", "output": "HAIYI_1 2.mp4", "error_type": "info"}],
            },
            http,
        )
        assert st.outputs[0].type == "video"
        assert st.outputs[0].url == "https://art.invalid/api/view?type=output&filename=HAIYI_1%202.mp4"
        st = _task_status({"status": "running", "progress": {"total_progress": 250}}, http)
        assert st.progress == 100 and st.state == "running"
    finally:
        http.close()
    with pytest.raises(TransientError):
        _payload({"code": 1, "msg": "系统繁忙,请稍后重试"})
    with pytest.raises(AuthError):
        _payload({"code": 401, "msg": "invalid token"})
    with pytest.raises(PermanentError) as e:
        _payload({"code": 40001, "msg": "workflow not found"})
    assert str(e.value) == "Haiyi error code 40001: workflow not found" and not e.value.transient
    assert _payload({"task_id": 24317, "status": "submitted"}) == {"task_id": 24317, "status": "submitted"}
