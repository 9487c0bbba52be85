"""EasyAIClient against the built-in simulator over real HTTP: every quirk and every error class of PLATFORMS.md."""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from agent.config import EasyAIPlatformConfig, ProfileConfig, make_profile
from agent.platforms.base import (
    AuthError,
    PermanentError,
    RemoteOutput,
    SubmitRequest,
    TaskStatus,
    TransientError,
)
from agent.platforms.easyai import EasyAIClient
from agent.platforms.errors import parse_retry_after
from agent.platforms.media import sniff
from agent.platforms.session import BearerForOrigin
from tests.support.platform import ClientMaker, platform_sim, sim_defaults
from tests.support.platform import jpeg as support_jpeg

KEY = "sk-test-7f3a9c-SECRET"
DEFAULTS = sim_defaults(KEY)


@pytest.fixture(scope="module")
def sim():
    with platform_sim(KEY, seed=1) as s:
        yield s


@pytest.fixture(autouse=True)
def _reset(sim):
    yield
    sim.configure(**DEFAULTS)


@pytest.fixture
def client_for(sim):
    """Build clients against the simulator (or another URL); all closed at the end of the test."""
    maker = ClientMaker(sim, EasyAIPlatformConfig, "easyai", "easy", KEY)
    yield maker
    maker.close()


def jpeg(w: int = 96, h: int = 64) -> bytes:
    return support_jpeg(w, h, (200, 40, 90))


def profile(endpoint: str = "images.edits", model: str = "cartoon", **kw) -> ProfileConfig:
    return make_profile(name="p", platform="easy", endpoint=endpoint, model=model, **kw)


def request(prof: ProfileConfig, prompt: str | None = "make it a cartoon", params=None, image: bytes | None = None):
    return SubmitRequest(image or jpeg(), "job-1.jpg", prof, prompt, dict(params or {}))


def run(client, task_id: str, prof: ProfileConfig, timeout: float = 15.0) -> list[TaskStatus]:
    """Poll until finished; every status seen, the last one final."""
    seen: list[TaskStatus] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = client.poll(task_id, prof.endpoint)
        seen.append(st)
        if st.finished:
            return seen
        time.sleep(0.04)
    raise AssertionError(f"task {task_id} did not finish: {seen[-1:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_image(path: Path, size: int) -> None:
    assert path.stat().st_size == size > 0
    with Image.open(path) as im:
        im.load()
        assert im.width > 0 and im.height > 0


# --------------------------------------------------------------------------------------------- success paths


def test_images_edits_returns_outputs_that_download_as_real_images(sim, client_for, tmp_path):
    client = client_for()
    photo = jpeg()
    result = client.submit(request(profile(params={"n": 2}), params={"n": 2, "resolution": "1K"}, image=photo))
    assert result.task_id is None and result.status is not None
    assert result.status.state == "success" and result.status.progress == 100
    assert [o.type for o in result.status.outputs] == ["image", "image"]
    for i, out in enumerate(result.status.outputs):
        dl = client.download(out, tmp_path / f"result-{i + 1}")
        assert dl.path == tmp_path / f"result-{i + 1}.png"
        assert (dl.type, dl.content_type) == ("image", "image/png")
        assert_image(dl.path, dl.size)
    # the photo travelled as the multipart `image` file, the prompt as a field
    task = sim.tasks()[-1]
    assert task["image_sha256"] == hashlib.sha256(photo).hexdigest()
    assert task["prompt"] == "make it a cartoon" and task["endpoint"] == "images.edits"
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_ai_generations_polls_to_a_video_that_decodes(client_for, tmp_path):
    client = client_for()
    prof = profile("ai.generations", model="video_flux")
    result = client.submit(request(prof, params={"frames": 6}))
    assert result.status is None and isinstance(result.task_id, str) and result.task_id
    seen = run(client, result.task_id, prof)
    assert {s.state for s in seen[:-1]} <= {"pending", "running"}
    assert all(s.progress is None or 0 <= s.progress <= 100 for s in seen)
    assert any(s.state == "running" for s in seen)  # started / process / progressing
    final = seen[-1]
    assert final.state == "success" and final.progress == 100 and final.outputs[0].type == "video"
    dl = client.download(final.outputs[0], tmp_path / "result-1")
    assert dl.type == "video" and dl.path.suffix in (".mp4", ".gif") and dl.size == dl.path.stat().st_size
    cap = cv2.VideoCapture(str(dl.path))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame is not None and frame.shape[0] > 0


def test_base_url_with_trailing_slashes_is_joined_cleanly(sim, client_for, tmp_path):
    validated = client_for(base_url=sim.url + "/")
    assert validated.submit(request(profile())).status.state == "success"
    raw = EasyAIPlatformConfig.model_construct(kind="easyai", base_url=sim.url + "//")  # bypasses the strip
    client = EasyAIClient("easy", raw, SecretStr(KEY))
    try:
        prof = profile("ai.generations")
        result = client.submit(request(prof))
        final = run(client, result.task_id, prof)[-1]
        assert client.download(final.outputs[0], tmp_path / "r").size > 0
    finally:
        client.close()


def test_localhost_base_url_and_probe(sim, client_for):
    client = client_for(base_url=sim.url.replace("127.0.0.1", "localhost"))
    client.probe()
    assert client.submit(request(profile())).status.state == "success"


# --------------------------------------------------------------------------------------------- quirks


def test_wrap_data_envelope_is_unwrapped(sim, client_for):
    sim.configure(quirks={"wrap_data"})
    client = client_for()
    assert client.submit(request(profile())).status.outputs[0].type == "image"
    prof = profile("ai.generations")
    result = client.submit(request(prof))
    assert result.task_id
    final = run(client, result.task_id, prof)[-1]
    assert final.state == "success" and final.outputs


def test_comfy_view_urls_resolve_against_the_base_url_and_download(sim, client_for, tmp_path):
    sim.configure(quirks={"comfy_view_urls"})
    client = client_for(base_url=sim.url + "/")
    out = client.submit(request(profile())).status.outputs[0]
    assert out.url.startswith(sim.url + "/view?filename=")
    dl = client.download(out, tmp_path / "r")
    assert_image(dl.path, dl.size)


def test_text_output_is_text_not_a_download(sim, client_for, tmp_path):
    sim.configure(quirks={"text_output"})
    client = client_for()
    prof = profile("ai.generations", model="captioner")
    final = run(client, client.submit(request(prof, prompt="describe")).task_id, prof)[-1]
    assert final.state == "success"
    assert [o.type for o in final.outputs] == ["text"]
    assert final.outputs[0].url is None and "describe" in final.outputs[0].text
    with pytest.raises(ValueError):
        client.download(final.outputs[0], tmp_path / "r")


@pytest.mark.parametrize("quirk", ["progress_missing", "progress_garbage"])
def test_missing_or_garbage_progress_is_none(sim, client_for, quirk):
    sim.configure(quirks={quirk}, latency=0.6)
    client = client_for()
    prof = profile("ai.generations")
    seen = run(client, client.submit(request(prof)).task_id, prof)
    unfinished = [s for s in seen if not s.finished]
    assert len(unfinished) >= 4  # enough polls to walk through every garbage shape
    assert all(s.progress is None for s in unfinished)
    assert seen[-1].state == "success"


def test_octet_stream_download_is_sniffed(sim, client_for, tmp_path):
    client = client_for()
    out = client.submit(request(profile())).status.outputs[0]
    sim.configure(quirks={"octet_stream"})
    dl = client.download(out, tmp_path / "r")
    assert (dl.content_type, dl.type, dl.path.suffix) == ("image/png", "image", ".png")
    assert_image(dl.path, dl.size)


def test_html_download_is_refused(sim, client_for, tmp_path):
    client = client_for()
    out = client.submit(request(profile())).status.outputs[0]
    sim.configure(quirks={"html_download"})
    with pytest.raises(PermanentError) as e:
        client.download(out, tmp_path / "r")
    assert "text/html" in str(e.value) and e.value.kind == "output"
    assert list(tmp_path.iterdir()) == []


def test_huge_output_is_refused_early_and_leaves_no_file(sim, client_for, tmp_path):
    sim.configure(quirks={"huge_output"})
    client = client_for(max_download_mb=1)
    out = client.submit(request(profile())).status.outputs[0]
    with pytest.raises(PermanentError) as e:
        client.download(out, tmp_path / "r")
    assert "output larger than 1 MB" in str(e.value)
    assert list(tmp_path.iterdir()) == []
    # the same output fits under a larger cap
    big = client_for(max_download_mb=8).download(out, tmp_path / "r")
    assert big.size > 3 * 1024 * 1024 and big.type == "image"


def test_expired_signed_url_is_permanent_not_auth(sim, client_for, tmp_path):
    sim.configure(quirks={"expire_fast"}, expire_fast_s=0.15)
    client = client_for()
    out = client.submit(request(profile())).status.outputs[0]
    expires = float(parse_qs(urlsplit(out.url).query)["expires"][0])
    time.sleep(max(0.0, expires - time.time()) + 0.05)  # just past the link's own expiry
    with pytest.raises(PermanentError) as e:
        client.download(out, tmp_path / "r")
    assert not isinstance(e.value, AuthError)
    assert str(e.value) == "output link expired or forbidden (HTTP 403)" and e.value.status == 403
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------- errors


def test_wrong_key_is_an_auth_error_without_the_key_anywhere(sim, client_for, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-0b1d-SECRET"
    client = client_for(key=wrong)
    with pytest.raises(AuthError) as e:
        client.submit(request(profile()))
    err = e.value
    assert err.status == 401 and err.kind == "auth" and not err.transient
    assert "Unauthorized" in str(err)  # the NestJS body's message
    prof = profile("ai.generations")
    with pytest.raises(AuthError):
        client.poll("nope", prof.endpoint)
    with pytest.raises(AuthError):
        client_for(key=None).submit(request(prof))
    assert caplog.records  # httpx/httpcore did log the requests
    for text in (str(err), repr(err), repr(client), caplog.text):
        assert wrong not in text and KEY not in text


def test_key_never_in_logs_or_errors_of_a_failing_run(sim, client_for, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    client = client_for()
    errors: list[Exception] = []
    sim.configure(fail_rate=1.0)
    for _ in range(8):
        with pytest.raises(TransientError) as e:
            client.submit(request(profile()))
        errors.append(e.value)
    sim.configure(fail_rate=0.0)
    with pytest.raises(PermanentError) as e:
        client.poll("no-such-task", "ai.generations")
    errors.append(e.value)
    assert KEY not in caplog.text
    for err in errors:
        assert KEY not in str(err) and KEY not in repr(err) and KEY not in repr(err.args)


@pytest.mark.parametrize(
    "kind, status, needle",
    [
        ("500", 500, "Internal server error"),
        ("code", 500, "Internal server error"),
        ("502html", 502, "<html> <head><title>502 Bad Gateway"),
        ("504html", 504, "504 Gateway Time-out"),
        ("503", 503, "Service Unavailable"),
        ("429", 429, "Too Many Requests"),
        ("empty", 502, "(empty body)"),
        ("drop", None, "no answer"),
    ],
)
def test_each_failure_kind_is_transient_with_status_and_reason(sim, client_for, kind, status, needle):
    sim.configure(fail_rate=1.0, failure_kinds=(kind,), retry_after_s=2.5)
    client = client_for()
    with pytest.raises(TransientError) as e:
        client.submit(request(profile()))
    err = e.value
    assert err.status == status and needle in str(err)
    if status is not None:
        assert str(err).startswith(f"HTTP {status} from {sim.url.removeprefix('http://')}: ")
        assert len(str(err)) < 200  # an HTML page is cut to its first bytes
    assert err.kind == {"drop": "network"}.get(kind, "http")
    assert err.retry_after == (2.5 if kind == "429" else None)
    # the same failures on a poll
    with pytest.raises(TransientError):
        client.poll("abc", "ai.generations")


def test_rejected_when_the_queue_is_over_its_limit_is_transient(sim, client_for):
    sim.configure(workers=1, queue_limit=0)
    client = client_for()
    prof = profile("ai.generations")
    busy = client.submit(request(prof, prompt="SLOW one")).task_id  # holds the only GPU
    try:
        with pytest.raises(TransientError) as e:
            client.submit(request(prof))
        assert e.value.kind == "rejected" and "queue over limit" in str(e.value)
        with pytest.raises(TransientError) as e:
            client.submit(request(profile()))  # the sync edit is rejected the same way
        assert e.value.kind == "rejected"
    finally:
        client.cancel(busy, prof.endpoint)


def test_fail_prompt_fails_the_task_with_the_platform_message(client_for):
    client = client_for()
    prof = profile("ai.generations")
    final = run(client, client.submit(request(prof, prompt="please FAIL")).task_id, prof)[-1]
    assert final.state == "failed" and "FAIL" in final.message and final.outputs == []
    with pytest.raises(PermanentError) as e:  # the sync edit: a `failed` inside HTTP 200
        client.submit(request(profile(), prompt="FAIL now"))
    assert not e.value.transient and "FAIL" in str(e.value) and "EasyAI failed" in str(e.value)


def test_unknown_task_is_permanent_404(client_for):
    with pytest.raises(PermanentError) as e:
        client_for().poll("000000000000", "ai.generations")
    assert e.value.status == 404 and "not found" in str(e.value)


def test_cancel_a_running_task_then_cancelling_a_finished_one_is_refused(sim, client_for):
    client = client_for()
    assert client.supports_cancel
    prof = profile("ai.generations")
    task_id = client.submit(request(prof, prompt="SLOW")).task_id
    client.cancel(task_id, prof.endpoint)
    st = client.poll(task_id, prof.endpoint)
    assert st.state == "cancelled" and st.finished
    assert next(t for t in sim.tasks() if t["task_id"] == task_id)["state"] == "cancelled"
    done = client.submit(request(prof)).task_id
    run(client, done, prof)
    with pytest.raises(PermanentError) as e:
        client.cancel(done, prof.endpoint)
    assert "already finished" in str(e.value)


def test_polls_follow_the_recorded_endpoint_and_refuse_another_platforms(sim, client_for):
    client = client_for()
    prof = profile("ai.generations")
    task_id = client.submit(request(prof)).task_id
    before = len(sim.requests())
    for endpoint in ("ai.generations", "images.edits"):  # both poll EasyAI's one task route
        assert client.poll(task_id, endpoint).state in ("pending", "running", "success")
    assert [r["path"] for r in sim.requests()[before:]] == [f"/v1/ai/result/{task_id}"] * 2
    before = len(sim.requests())
    haiyi = make_profile(name="t", platform="easy", endpoint="apps.run", workflow_id="1")
    for call in (
        lambda: client.poll(task_id, "apps.run"),
        lambda: client.cancel(task_id, "apps.run"),
        lambda: client.submit(request(haiyi)),
    ):
        with pytest.raises(PermanentError) as e:
            call()
        assert (
            str(e.value)
            == "EasyAI has no endpoint 'apps.run' (images.edits, images.generations, videos.generations, ai.generations)"
        )
    assert len(sim.requests()) == before  # refused before anything was sent


def test_oversized_upload_gets_the_html_413_as_permanent(sim, client_for):
    sim.configure(max_upload_bytes=2_000)
    with pytest.raises(PermanentError) as e:
        client_for().submit(request(profile(), image=jpeg(400, 300)))
    assert e.value.status == 413 and "413 Request Entity Too Large" in str(e.value)
    assert not isinstance(e.value, AuthError)


def test_connection_refused_is_transient_network(client_for):
    client = client_for(base_url=f"http://127.0.0.1:{free_port()}", connect_timeout_s=1)
    with pytest.raises(TransientError) as e:
        client.submit(request(profile()))
    assert e.value.kind == "network" and e.value.status is None
    with pytest.raises(TransientError) as e:
        client.probe()
    assert e.value.kind == "network"


def test_slow_sync_edit_hits_the_read_timeout_as_transient(client_for):
    client = client_for(read_timeout_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(TransientError) as e:
        client.submit(request(profile(), prompt="SLOW edit"))
    assert e.value.kind == "timeout" and "timed out" in str(e.value)
    assert time.monotonic() - t0 < 3


def test_probe_counts_any_http_answer_as_reachable(sim, client_for):
    client_for(key="wrong").probe()  # a 401 still proves the server is there


# --------------------------------------------------------------------------------------------- plumbing


def test_bearer_goes_only_to_the_platform_origin():
    auth = BearerForOrigin(SecretStr(KEY), ("http", "127.0.0.1", 3001))

    def header(url: str) -> str | None:
        return next(auth.auth_flow(httpx.Request("GET", url))).headers.get("Authorization")

    assert header("http://127.0.0.1:3001/v1/ai/result/x") == f"Bearer {KEY}"
    assert header("http://127.0.0.1:3002/files/a.png") is None  # another port
    assert header("https://127.0.0.1:3001/files/a.png") is None  # another scheme
    assert header("http://bucket.oss.example/files/a.png?sig=1") is None  # a signed object-store URL
    assert KEY not in repr(auth)


def test_retry_after_seconds_and_http_date():
    now = 1_700_000_000.0
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:40 GMT", now=now) == pytest.approx(20.0)
    assert parse_retry_after("Tue, 14 Nov 2000 22:13:40 GMT", now=now) == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize(
    "head, media_type",
    [
        (b"\x89PNG\r\n\x1a\n....", "image/png"),
        (b"\xff\xd8\xff\xe0..JFIF", "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"GIF89a....", "image/gif"),
        (b"\x00\x00\x00\x18ftypmp42....", "video/mp4"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "video/webm"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"ID3\x04\x00....", "audio/mpeg"),
        (b"glTF\x02\x00\x00\x00", "model/gltf-binary"),
        (b"\n<!DOCTYPE html><html>", "text/html"),
        (b"hello world", None),
    ],
)
def test_magic_bytes(head, media_type):
    assert sniff(head) == media_type


def test_text_output_without_url_is_a_value_error(client_for, tmp_path):
    with pytest.raises(ValueError):
        client_for().download(RemoteOutput(type="text", text="hi"), tmp_path / "r")


# --------------------------------------------------------------------------------------------- reply shapes the
# simulator never sends (from the docs): parsed straight from literal replies, no network involved


def test_reply_shapes_from_the_docs():
    from agent.platforms.easyai import task_status as _task_status
    from agent.platforms.easyai import unwrap as _unwrap
    from agent.platforms.replies import as_percent, error_message_from
    from agent.platforms.session import PlatformHTTP

    http = PlatformHTTP(EasyAIPlatformConfig(kind="easyai", base_url="http://easy.invalid/"), None)
    try:
        with pytest.raises(TransientError) as e:  # `rejected` on a poll: the queue is over its limit
            _task_status(_unwrap({"data": {"task_id": "t", "status": "rejected"}}), http)
        assert e.value.kind == "task_rejected"  # a queued task dropped: submitted again, never polled again
        st = _task_status({"task_id": "t", "status": "progressing", "progress": 0.42, "queue": 3}, http)
        assert (st.state, st.progress, st.queue_position) == ("running", 42, 3)
        st = _task_status({"status": "success", "output": ["/view?filename=a.wav&type=output"], "type": "audio"}, http)
        assert st.outputs[0].type == "audio"
        assert st.outputs[0].url == "http://easy.invalid/view?filename=a.wav&type=output"
        st = _task_status({"status": "success", "output": []}, http)
        assert st.state == "failed" and "no outputs" in st.message
    finally:
        http.close()
    assert [as_percent(v) for v in (0.5, 1.0, 1, 57, 140, -3, "94%", None, True, float("nan"))] == [
        50,
        100,
        1,
        57,
        100,
        0,
        None,
        None,
        None,
        None,
    ]
    assert error_message_from({"error": {"message": "Incorrect API key provided"}}) == "Incorrect API key provided"
    assert error_message_from({"statusCode": 401, "message": "Unauthorized"}) == "Unauthorized"
    assert error_message_from({"statusCode": 400, "message": ["n must be a number"], "error": "Bad Request"}) == (
        "n must be a number"
    )
