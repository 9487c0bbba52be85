"""What a hostile platform can make the client keep or raise: no 8 characters of the key in any error or status
(a 4xx body, an error message, a 3xx Location, a 2xx non-JSON reply, a web page served as an image, a failure
message, a Haiyi envelope, a task id, a text output), and no unbounded platform text (a 6 MB failure message,
thousands of outputs, megabytes of node warnings). Against tests/support/hostile.py over real HTTP on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.config import make_profile
from agent.platforms.base import PermanentError, PlatformError, SubmitRequest
from tests.support.hostile import KEY, HostileServer, image, json_reply, redirect, reply
from tests.support.platform import jpeg


def windows(secret: str, n: int = 8) -> set[str]:
    return {secret[i : i + n] for i in range(len(secret) - n + 1)}


def assert_no_key(text: str) -> None:
    leaked = sorted(w for w in windows(KEY) if w in text)
    assert not leaked, f"key fragments {leaked[:3]} in {text[:300]!r}"


def edits_request() -> SubmitRequest:
    prof = make_profile(name="p", platform="easy", endpoint="images.edits", model="cartoon")
    return SubmitRequest(jpeg(), "job-1.jpg", prof, "make it a cartoon", {})


def async_request() -> SubmitRequest:
    prof = make_profile(name="p", platform="easy", endpoint="ai.generations", model="oil")
    return SubmitRequest(jpeg(), "job-1.jpg", prof, None, {})


# --------------------------------------------------------------------------------------------- 3. no key prefix

VARIANTS = {"whole": KEY, "all-but-last": KEY[:-1], "all-but-first": KEY[1:], "a 12-char run": KEY[9:21]}


def _raise_from(place: str, echoed: str, srv: HostileServer, clients, tmp_path: Path) -> str:
    """Make the hostile server put ``echoed`` in ``place``; the text the client raised or returned."""
    c = clients(srv.url)
    pad = "x" * 97  # the previews cut at 120 characters: the key straddles the cut
    if place == "4xx-text-body":
        srv.route("/v1/images/edits", reply(f"{pad}{echoed} trailing".encode(), status=502, content_type="text/html"))
    elif place == "4xx-json-message":
        srv.route("/v1/images/edits", json_reply({"message": f"{pad}invalid key {echoed}"}, status=400))
    elif place == "3xx-location":
        where = f"http://127.0.0.1:{srv.port}/login?{'y' * 150}&key={echoed}"
        srv.route("/v1/images/edits", redirect(where, status=301))
    elif place == "2xx-not-json":
        srv.route("/v1/images/edits", reply(f"{pad}{echoed}".encode(), content_type="text/plain"))
    elif place == "html-download":
        url = srv.route("/out.png", reply(f"<html><title>{echoed}</title>{pad}".encode(), content_type="image/png"))
        with pytest.raises(PlatformError) as e:
            c.download(image(url), tmp_path / "r")
        return str(e.value)
    elif place == "failed-task-message":
        message = f"{echoed} " + "z" * 6_000_000 + f" {echoed}"
        srv.route("/v1/ai/result/t1", json_reply({"status": "failed", "message": message}))
        st = c.poll("t1", "ai.generations")
        assert st.state == "failed" and len(st.message or "") < 700
        return st.message or ""
    elif place == "haiyi-envelope":
        hy = clients(srv.url, kind="haiyi")
        srv.route("/openapi/v1/workflow/apps/task/7", json_reply({"code": 500, "msg": f"{pad}{echoed}"}))
        with pytest.raises(PlatformError) as e:
            hy.poll("7", "apps.run")
        return str(e.value)
    elif place == "task-id":
        srv.route("/v1/ai/generations", json_reply({"status": "submitted", "task_id": f"t-{echoed}"}))
        with pytest.raises(PermanentError) as e:
            c.submit(async_request())
        assert e.value.kind == "protocol"
        return str(e.value)
    elif place == "text-output-and-warning":
        body = {"status": "success", "type": "text", "output": [f"caption {echoed}"], "message": echoed}
        srv.route("/v1/ai/result/t1", json_reply(body))
        st = c.poll("t1", "ai.generations")
        return json.dumps([o.as_dict() for o in st.outputs]) + repr(st)
    else:
        raise AssertionError(place)
    with pytest.raises(PlatformError) as e:
        c.submit(edits_request())
    return str(e.value) + repr(e.value.args)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    "place",
    [
        "4xx-text-body",
        "4xx-json-message",
        "3xx-location",
        "2xx-not-json",
        "html-download",
        "failed-task-message",
        "haiyi-envelope",
        "task-id",
        "text-output-and-warning",
    ],
)
def test_no_8_character_run_of_the_key_survives_anywhere(srv, clients, tmp_path, place, variant):
    text = _raise_from(place, VARIANTS[variant], srv, clients, tmp_path)
    assert_no_key(text)


def test_an_output_link_carrying_the_key_is_refused(srv, clients):
    srv.route("/v1/ai/result/t1", json_reply({"status": "success", "output": [f"{srv.url}/o.png?k={KEY[:20]}"]}))
    with pytest.raises(PermanentError) as e:
        clients(srv.url).poll("t1", "ai.generations")
    assert e.value.kind == "protocol" and "API key" in str(e.value)
    assert_no_key(str(e.value))


def test_a_task_id_equal_to_the_key_is_never_returned(srv, clients):
    srv.route("/v1/ai/generations", json_reply({"status": "submitted", "task_id": KEY}))
    with pytest.raises(PermanentError) as e:
        clients(srv.url).submit(async_request())
    assert e.value.kind == "protocol" and "task id" in str(e.value)


# --------------------------------------------------------------------------------------------- 7. stored texts


def test_thousands_of_outputs_are_cut_to_max_outputs_with_a_warning(srv, clients):
    urls = [f"{srv.url}/o{i}.png" for i in range(5000)]
    srv.route("/v1/ai/result/t1", json_reply({"status": "success", "type": "image", "output": urls}))
    st = clients(srv.url, max_outputs=8).poll("t1", "ai.generations")
    assert len(st.outputs) == 8 and [o.url for o in st.outputs] == urls[:8]
    assert any("5000 outputs" in w for w in st.warnings)
    assert sum(len(w) for w in st.warnings) < 2000


def test_node_warnings_are_bounded_and_masked(srv, clients):
    outputs = [{"output": f"{srv.url}/o.png", "error_type": "info"}]
    outputs += [{"output": f"warn {KEY[:-1]} " + "w" * 100_000, "error_type": "warning"} for _ in range(50)]
    srv.route(
        "/openapi/v1/workflow/apps/task/7", json_reply({"code": 0, "data": {"status": "success", "outputs": outputs}})
    )
    st = clients(srv.url, kind="haiyi").poll("7", "apps.run")
    assert st.state == "success" and len(st.outputs) == 1
    text = "; ".join(st.warnings)
    assert len(text) < 8000
    assert_no_key(text)


def test_a_job_keeps_no_key_and_no_megabytes_from_a_hostile_platform(config_file, srv):
    """End to end through the agent: the platform echoes the bearer it was sent (all but one character of it) in a
    6 MB failure message. The job's error, job.json and the agent's state stay small and hold none of it."""
    from agent.commands import Command
    from agent.config import load_config
    from agent.core import Agent
    from agent.jobs.model import JobState
    from tests.support.configs import TEST_KEY

    def failed(req):
        return {"status": "failed", "message": f"bad key {req.bearer[:-1]} " + "z" * 6_000_000 + f" {req.bearer[1:]}"}

    srv.route("/v1/ai/generations", json_reply({"status": "submitted", "task_id": "t1"}))
    srv.route("/v1/ai/result/t1", json_reply(failed))
    agent = Agent(load_config(config_file(platforms={"easy": {"base_url": srv.url}})))
    agent.start()
    try:
        jid = agent.request(Command("capture", "http", profile="oil")).result(10)["job_id"]
        job = agent.wait_for(jid, timeout=20)
        assert job.state == JobState.FAILED and "bad key ***" in (job.error or "")
        stored = [job.error or "", Path(job.result_dir, "job.json").read_text(), json.dumps(agent.state())]
    finally:
        agent.stop()
    assert len(stored[0]) < 1000 and len(stored[1]) < 20_000
    for text in stored:
        leaked = [w for w in windows(TEST_KEY) if w in text]
        assert not leaked, leaked
