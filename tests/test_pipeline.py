"""The whole loop in one process: Agent + synthetic camera + the simulator over real HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PIL import Image

from agent.commands import Command, CommandError
from agent.jobs.model import JobState
from tests.support.configs import TEST_KEY
from tests.support.proc import wait_until

S = JobState


def capture(agent, profile=None, **kw):
    return agent.request(Command("capture", kw.pop("source", "http"), profile=profile, **kw)).result(timeout=10)


def events_of(sub, job_id, until=("job.done", "job.failed", "job.cancelled", "job.expired"), timeout=20.0):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ev = sub.get(timeout=0.2)
        if ev is None or ev.data.get("job_id") != job_id:
            continue
        seen.append(ev)
        if ev.type in until:
            return seen
    raise AssertionError(f"job {job_id} did not finish: {[e.type for e in seen]}")


@pytest.fixture(autouse=True)
def _reset_sim(sim):
    yield
    sim.configure(fail_rate=0.0, quirks=frozenset(), latency=0.2)


def test_easyai_edits_end_to_end_with_result_layout(make_agent) -> None:
    agent = make_agent()
    with agent.events.subscribe() as sub:
        res = capture(agent, "cartoon")
        evs = events_of(sub, res["job_id"])
    # the result is presented (published) before job.done announces it, so whoever reacts to job.done finds it
    assert [e.type for e in evs if e.type != "job.progress"] == [
        "job.captured",
        "job.submitting",
        "job.submitted",
        "job.downloading",
        "result",
        "job.done",
    ]
    result = next(e for e in evs if e.type == "result")
    assert [o["path"] for o in result.data["outputs"]] == [o["path"] for o in evs[-1].data["outputs"]]
    job = agent.store.get(res["job_id"])
    day = time.strftime("%Y-%m-%d", time.localtime(job.created_at))
    folder = agent.config.device.results_dir / day / job.id
    assert Path(job.result_dir) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["capture.jpg", "job.json", "result-1.png"]
    with Image.open(folder / "result-1.png") as im, Image.open(folder / "capture.jpg") as cap:
        assert im.size[0] / im.size[1] == pytest.approx(cap.size[0] / cap.size[1], rel=0.02)
    meta = json.loads((folder / "job.json").read_text())
    assert meta["state"] == "done" and meta["outputs"][0]["type"] == "image"
    assert meta["outputs"][0]["url"].endswith(f"/results/{job.id}/result-1.png")
    assert TEST_KEY not in (folder / "job.json").read_text()
    done = evs[-1].data
    assert done["outputs"] == [
        {"type": "image", "url": meta["outputs"][0]["url"], "path": str(folder / "result-1.png")}
    ]


def test_easyai_async_generations_reports_progress(make_agent, sim) -> None:
    sim.configure(latency=1.0)
    agent = make_agent()
    with agent.events.subscribe() as sub:
        res = capture(agent, "oil")
        evs = events_of(sub, res["job_id"])
    progress = [e.data["progress"] for e in evs if e.type == "job.progress"]
    assert progress and progress == sorted(progress) and 0 < progress[0] < 100
    job = agent.store.get(res["job_id"])
    assert job.state == S.DONE and job.remote_task_id
    assert Path(job.outputs[0].path).stat().st_size > 1000


def test_haiyi_app_end_to_end(make_agent) -> None:
    agent = make_agent()
    res = capture(agent, "tryon")
    job = agent.wait_for(res["job_id"], timeout=20)
    assert job.state == S.DONE, job.error
    Image.open(job.outputs[0].path).verify()


def test_platform_failure_fails_the_job_with_the_reason(make_agent) -> None:
    agent = make_agent()
    res = capture(agent, "cartoon", params={"prompt": "please FAIL"})
    job = agent.wait_for(res["job_id"], timeout=20)
    assert job.state == S.FAILED
    assert job.error.startswith("the platform failed the task") or "fail" in job.error.lower()
    assert agent.state()["last_error"] == job.error


def test_transient_errors_back_off_then_deliver(make_agent, sim) -> None:
    sim.configure(fail_rate=1.0, failure_kinds=("503",))
    agent = make_agent()
    res = capture(agent, "cartoon")
    wait_until(lambda: agent.store.get(res["job_id"]).failures >= 2, timeout=10, what="two failed attempts")
    job = agent.store.get(res["job_id"])
    assert job.state in (S.CAPTURED, S.SUBMITTING) and "503" in (job.error or "")
    assert job.priority == 0  # now part of the backlog
    sim.configure(fail_rate=0.0)
    job = agent.wait_for(res["job_id"], timeout=20)
    assert job.state == S.DONE and job.error is None
    assert any("will retry" in h.get("note", "") for h in job.history)


def test_wrong_key_fails_with_alarm_and_no_secret_anywhere(make_agent, monkeypatch) -> None:
    monkeypatch.setenv("EDGE_AGENT_TEST_KEY", "sk-wrong-key-123456")
    agent = make_agent()
    with agent.events.subscribe() as sub:
        res = capture(agent, "cartoon")
        job = agent.wait_for(res["job_id"], timeout=20)
        time.sleep(0.3)
        evs = []
        while (ev := sub.get(timeout=0.1)) is not None:
            evs.append(ev)
    assert job.state == S.FAILED and "401" in job.error and "Unauthorized" in job.error
    assert any(e.type == "alarm" and e.data["code"] == "auth" and e.data["platform"] == "easy" for e in evs)
    wait_until(lambda: agent.mode == "error", timeout=2, what="mode error")
    text = json.dumps([e.as_dict() for e in evs]) + Path(job.result_dir, "job.json").read_text()
    assert "sk-wrong-key-123456" not in text


def test_deadline_expires_and_retry_redrives(make_agent) -> None:
    agent = make_agent(queue={"task_deadline_s": 1.0})
    res = capture(agent, "oil", source="cli", params={"prompt": "SLOW"})
    job = agent.wait_for(res["job_id"], timeout=20)
    assert job.state == S.EXPIRED and job.error.startswith("no answer from the platform within task_deadline_s=1s")
    out = agent.request(Command("retry", "cli", job_id=job.id)).result(timeout=5)
    assert out["state"] == "captured"
    job = agent.store.get(job.id)
    assert job.remote_task_id is None or job.state != S.CAPTURED


def test_cancel_also_cancels_the_remote_task(make_agent, sim) -> None:
    agent = make_agent()
    res = capture(agent, "oil", source="cli", params={"prompt": "SLOW"})
    job = wait_until(lambda: (j := agent.store.get(res["job_id"])).state == S.SUBMITTED and j, what="submitted")
    out = agent.request(Command("cancel", "http", job_id=job.id)).result(timeout=10)
    assert out["state"] == "cancelled"
    task = next(t for t in sim.tasks() if t["task_id"] == job.remote_task_id)
    assert task["state"] == "cancelled" and task["cancelled_at"] is not None
    with pytest.raises(CommandError) as e:
        agent.request(Command("cancel", "http", job_id=job.id)).result(timeout=5)
    assert e.value.code == "invalid_state"


@pytest.mark.parametrize(
    "params,msg",
    [
        ({"model": "other"}, "param 'model' may not be set remotely (profile 'cartoon' allows: prompt)"),
        (
            {"prompt": "http://169.254.169.254/x"},
            "param 'prompt' looks like a path or URL; those are never accepted remotely",
        ),
        ({"prompt": "/etc/passwd"}, "param 'prompt' looks like a path or URL; those are never accepted remotely"),
        ({"prompt": ["a"]}, "param 'prompt' must be a string, number or boolean"),
        (
            {"prompt": "garments/../../etc/passwd"},
            "param 'prompt' looks like a path or URL; those are never accepted remotely",
        ),
        (
            {"prompt": "\\\\server\\share\\x.png"},
            "param 'prompt' looks like a path or URL; those are never accepted remotely",
        ),
        (
            {"prompt": "data:image/png;base64,AAAA"},
            "param 'prompt' looks like a path or URL; those are never accepted remotely",
        ),
        ({"prompt": "\u200b/etc/passwd"}, "param 'prompt' contains control or invisible characters"),
        ("x", "params must be an object"),
    ],
)
def test_remote_params_are_checked(make_agent, params, msg) -> None:
    agent = make_agent()
    with pytest.raises(CommandError) as e:
        capture(agent, "cartoon", source="mqtt", params=params)
    assert (e.value.code, e.value.message) == ("bad_request", msg)
    assert agent.store.counts() == {}


@pytest.mark.parametrize("prompt", ["Style: anime", "a cat, 16:9, at 3:30pm", "AC/DC on stage", "hello .. world"])
def test_ordinary_prompts_are_accepted(make_agent, prompt) -> None:
    agent = make_agent()
    res = capture(agent, "cartoon", source="mqtt", params={"prompt": prompt})
    assert agent.store.get(res["job_id"]).params == {"prompt": prompt}


def test_disk_full_refuses_new_photos_and_keeps_the_queue(make_agent) -> None:
    agent = make_agent()
    first = capture(agent, "cartoon")
    agent.wait_for(first["job_id"], timeout=20)
    agent.config.queue.min_free_disk_mb = 10**9
    with agent.events.subscribe() as sub:
        with pytest.raises(CommandError) as e:
            capture(agent, "cartoon")
        refused = wait_until(
            lambda: next((ev for ev in iter(lambda: sub.get(0.1), None) if ev.type == "capture.refused"), None),
            what="refusal event",
        )
    assert e.value.code == "disk_full" and e.value.message.startswith("storage full: ")
    assert "queue.min_free_disk_mb" in e.value.message
    assert refused.data["message"] == e.value.message
    wait_until(lambda: agent.mode == "disk_full", timeout=2, what="mode disk_full")  # derived on the bus thread
    assert agent.store.counts() == {"done": 1}


def test_unknown_profile_is_refused(make_agent) -> None:
    agent = make_agent()
    with pytest.raises(CommandError) as e:
        capture(agent, "nope")
    assert e.value.code == "not_found" and "profiles: cartoon, oil, tryon" in e.value.message


def test_state_shape(make_agent) -> None:
    agent = make_agent()
    st = agent.state()
    assert {"mode", "queue", "current_job", "last_error", "version"} <= set(st)
    assert st["mode"] == "ready"


def test_request_id_is_remembered_across_restarts(make_agent) -> None:
    """A QoS 1 command redelivered after a crash is answered with the job it already made."""
    agent = make_agent()
    first = capture(agent, "cartoon", source="mqtt", request_id="req-42")
    agent.stop()
    again = make_agent()  # same state_dir: a restarted daemon
    second = capture(again, "cartoon", source="mqtt", request_id="req-42")
    assert second["job_id"] == first["job_id"]
    assert sum(again.store.counts().values()) == 1


def test_a_job_in_backoff_never_blocks_the_others(make_agent) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    agent = make_agent(platforms={"haiyi": {"base_url": dead}}, queue={"max_in_flight": 1})
    stuck = capture(agent, "tryon")  # its platform is unreachable: it backs off
    wait_until(lambda: agent.store.get(stuck["job_id"]).failures >= 1, what="first failure")
    ok = capture(agent, "cartoon")
    assert agent.wait_for(ok["job_id"], timeout=20).state == S.DONE
    assert agent.store.get(stuck["job_id"]).state == S.CAPTURED
    assert agent.state()["platforms"] == {"easy": "online", "haiyi": "offline"}


def test_a_fresh_trigger_goes_ahead_of_the_backlog(config_file, sim) -> None:
    from agent.config import load_config
    from agent.core import Agent

    sim.configure(latency=0.4)
    agent = Agent(load_config(config_file(queue={"max_in_flight": 2})))
    try:
        # the backlog, as after an outage: 10 photos waiting before the scheduler runs
        backlog = [capture(agent, "cartoon")["job_id"] for _ in range(10)]
        for jid in backlog:
            agent.store.update(jid, (S.CAPTURED,), priority=0)
        agent.start()
        wait_until(lambda: agent.store.count_in((S.DONE,)) >= 1, timeout=20, what="drain started")
        fresh = capture(agent, "cartoon")["job_id"]
        done_fresh = agent.wait_for(fresh, timeout=20)
        assert done_fresh.state == S.DONE
        before = sum(
            1 for j in backlog if (b := agent.store.get(j)).state == S.DONE and b.finished_at < done_fresh.finished_at
        )
        assert before <= 4, f"{before} backlog jobs finished before the fresh one"
        for jid in backlog:
            assert agent.wait_for(jid, timeout=30).state == S.DONE
    finally:
        agent.stop()


def _dead_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_dead_platforms_backlog_never_starves_another_platform(make_agent) -> None:
    import time as _t

    agent = make_agent(platforms={"haiyi": {"base_url": _dead_url()}}, queue={"max_in_flight": 2})
    stuck = [capture(agent, "tryon")["job_id"] for _ in range(30)]
    wait_until(lambda: agent.state()["platforms"]["haiyi"] == "offline", what="haiyi offline")
    assert {agent.store.get(j).priority for j in stuck} == {0}  # backlog now: the next guest goes first
    later = capture(agent, "tryon")["job_id"]
    assert agent.store.get(later).priority == 0  # taken while its platform is away
    t0 = _t.process_time()
    ok = capture(agent, "cartoon")
    assert agent.wait_for(ok["job_id"], timeout=20).state == S.DONE
    _t.sleep(2.0)
    assert _t.process_time() - t0 < 1.5, "the scheduler spins while jobs wait"


def test_slow_sync_submits_are_not_resent_forever(make_agent, sim) -> None:
    agent = make_agent(platforms={"easy": {"read_timeout_s": 0.5}})
    res = capture(agent, "cartoon", params={"prompt": "SLOW"})
    job = agent.wait_for(res["job_id"], timeout=30)
    assert job.state == S.FAILED and job.attempts == 3
    assert job.error.startswith("the platform did not answer within read_timeout_s=0.5s, 3 times")
    assert agent.state()["platforms"]["easy"] == "online"  # slow is not unreachable


def test_backoff_never_overflows() -> None:
    from agent.jobs.retry import RetryPolicy

    assert 0 < RetryPolicy(2.0, 300.0).delay(5000) <= 300.0
