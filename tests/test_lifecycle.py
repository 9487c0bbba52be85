"""The job lifecycle: the transition table the store enforces, job.json written at every move, every recorded
reason masked, and the core's state derived from events (one alarm per platform, dedupe for every source)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from agent.commands import Command
from agent.config import load_config
from agent.core import Agent
from agent.jobs.lifecycle import ALLOWED_EDGES, TRANSITIONS, InvalidTransition, Lifecycle
from agent.jobs.model import FINAL_STATES, Job, JobState
from agent.jobs.store import JobStore
from agent.redact import Redactor
from agent.results import ResultLayout
from agent.steps.capture import store_capture
from tests.support.configs import TEST_KEY
from tests.support.proc import wait_until

S = JobState
SECRET = "sk-very-secret-0123456789"


@pytest.fixture
def lc(tmp_path: Path) -> Lifecycle:
    store = JobStore(tmp_path / "q.db")
    layout = ResultLayout(tmp_path / "results")
    return Lifecycle(store, layout, redact=Redactor([SECRET]).mask)


class _Profile:
    name = "p"
    platform = "easy"


def new_job(lc: Lifecycle) -> Job:
    job = store_capture(
        lc.layout,
        b"\xff\xd8\xff photo",
        profile=_Profile(),
        source="kiosk",
        params={},  # type: ignore[arg-type]
        request_id=None,
    )
    return lc.captured(job)


def job_json(job: Job) -> dict:
    return json.loads((Path(job.result_dir or "") / "job.json").read_text())


def test_the_table_is_the_state_machine() -> None:
    # nothing leaves a final state except `retry`, and nothing ever enters `captured` except retry and requeues
    for frm, to in ALLOWED_EDGES:
        if frm in FINAL_STATES:
            assert to == S.CAPTURED and frm in TRANSITIONS["retry"]
    assert (S.DONE, S.CAPTURED) not in ALLOWED_EDGES  # a delivered job is never sent again
    assert (S.CAPTURED, S.DONE) not in ALLOWED_EDGES


def test_store_refuses_a_transition_not_in_the_table(lc: Lifecycle) -> None:
    job = new_job(lc)
    with pytest.raises(InvalidTransition, match="captured -> done is not an allowed job transition"):
        lc.store.transition(job.id, (S.CAPTURED,), S.DONE)
    with pytest.raises(InvalidTransition):
        lc.store.transition(job.id, (S.CAPTURED, S.DOWNLOADING), S.SUBMITTED)
    assert lc.store.get(job.id).state == S.CAPTURED  # nothing changed


def test_every_milestone_writes_job_json_and_masks_its_reason(lc: Lifecycle) -> None:
    job = new_job(lc)
    assert job_json(job)["state"] == "captured"
    j = lc.start_submit(job.id, platform="easy", endpoint="ai.generations", attempts=1)
    assert job_json(j)["state"] == "captured"  # a step between milestones: the row only
    j = lc.backoff(j, f"HTTP 503 from host: key {SECRET} refused", delay=0.5, wait_kind="network")
    assert j.state == S.CAPTURED and job_json(j)["state"] == "captured"
    lc.start_submit(job.id, platform="easy", endpoint="ai.generations", attempts=2)
    j = lc.submitted(job.id, "task-1", next_poll_at=time.time())
    assert job_json(j)["remote_task_id"] == "task-1" and job_json(j)["state"] == "submitted"
    j = lc.task_done(job.id, [{"type": "image", "url": "http://127.0.0.1:9/r.png"}])
    assert j is not None and job_json(j)["state"] == "submitted"
    j = lc.fail(job.id, f"the platform echoed {SECRET}")
    on_disk = (Path(j.result_dir) / "job.json").read_text()
    assert job_json(j)["state"] == "failed" and SECRET not in on_disk and "***" in on_disk
    assert SECRET not in json.dumps(lc.store.get(job.id).public())
    raw = lc.store._db.execute("SELECT error, history FROM jobs WHERE id = ?", (job.id,)).fetchone()
    assert SECRET not in raw[0] and SECRET not in raw[1]


def test_a_retried_jobs_job_json_says_so_at_once_and_a_rebuild_requeues_it(lc: Lifecycle, tmp_path: Path) -> None:
    job = new_job(lc)
    lc.start_submit(job.id, platform="easy", endpoint="images.edits", attempts=1)
    lc.fail(job.id, "HTTP 401: Unauthorized")
    j = lc.retry(job.id, note="retried by a technician")
    assert j is not None and job_json(j)["state"] == "captured" and job_json(j)["error"] is None
    # the database is lost in that window: the rebuild adopts what job.json says - a queued photo, not a failure
    from agent.config import parse_config
    from agent.recovery import recover

    lc.store.close()
    (tmp_path / "q.db").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"q.db{suffix}").unlink(missing_ok=True)
    fresh = Lifecycle(JobStore(tmp_path / "q.db"), lc.layout)
    cfg = parse_config(
        {
            "platforms": {"easy": {"kind": "easyai", "base_url": "http://127.0.0.1:9"}},
            "profiles": [{"name": "p", "platform": "easy", "endpoint": "images.edits", "model": "m"}],
        },
        tmp_path / "c.toml",
    ).config
    rep = recover(fresh, cfg, integrity="rebuilt")
    assert rep.adopted == [job.id] and fresh.store.get(job.id).state == S.CAPTURED


def test_cancel_and_expire_record_masked_reasons(lc: Lifecycle) -> None:
    a, b = new_job(lc), new_job(lc)
    assert lc.cancel(a.id, f"cancelled by {SECRET}").error == "cancelled by ***"
    lc.start_submit(b.id, platform="easy", endpoint="ai.generations", attempts=1)
    lc.submitted(b.id, "t", next_poll_at=time.time())
    assert SECRET not in lc.expire(b.id, f"no answer ({SECRET})").error
    assert lc.cancel(a.id, "again") is None  # already final: the CAS loses, nothing is written


def test_purge_deletes_only_given_up_jobs(lc: Lifecycle) -> None:
    a, b = new_job(lc), new_job(lc)
    lc.fail(a.id, "x")
    gone = lc.purge([lc.store.get(a.id), lc.store.get(b.id)])
    assert gone == [a.id] and lc.store.get(b.id) is not None
    assert not Path(a.result_dir).exists() and Path(b.result_dir).exists()


def test_an_older_queue_gains_the_new_columns(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, profile TEXT NOT NULL, source TEXT NOT NULL, "
        "state TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL, "
        "capture_path TEXT NOT NULL, platform TEXT, attempts INTEGER NOT NULL DEFAULT 0, "
        "failures INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL DEFAULT 0, "
        "remote_task_id TEXT, progress INTEGER, error TEXT, outputs TEXT NOT NULL DEFAULT '[]', "
        "params TEXT NOT NULL DEFAULT '{}', priority INTEGER NOT NULL DEFAULT 1, wait_kind TEXT, "
        "submitted_at REAL, finished_at REAL, remote_outputs TEXT NOT NULL DEFAULT '[]', "
        "result_dir TEXT, request_id TEXT, resubmits INTEGER NOT NULL DEFAULT 0, "
        "history TEXT NOT NULL DEFAULT '[]');"
        "INSERT INTO jobs (id, profile, source, state, created_at, updated_at, capture_path) "
        "VALUES ('old-1', 'p', 'button', 'submitted', 1, 1, '/x');"
    )
    con.close()
    store = JobStore(db)
    job = store.get("old-1")
    assert job is not None and job.endpoint is None and job.state == S.SUBMITTED


# ---------------------------------------------------------------------------------------------- the core


def capture(agent: Agent, profile: str | None = None, **kw) -> dict:
    return agent.request(Command("capture", kw.pop("source", "kiosk"), profile=profile, **kw)).result(timeout=10)


@pytest.mark.parametrize("source", ["kiosk", "button", "cli", "http", "mqtt"])
def test_the_same_request_id_twice_makes_one_job_whatever_the_source(make_agent, source: str) -> None:
    agent = make_agent()
    first = capture(agent, "cartoon", source=source, request_id="press-42")
    again = capture(agent, "cartoon", source=source, request_id="press-42")
    assert again["job_id"] == first["job_id"]
    assert sum(agent.store.counts().values()) == 1


def test_alarm_per_platform_and_the_newest_failure_wins(config_file, monkeypatch, sim) -> None:
    monkeypatch.setenv("WRONG_KEY", "sk-wrong-000000000000")
    cfg = config_file(platforms={"haiyi": {"api_key_env": "WRONG_KEY"}})
    agent = Agent(load_config(cfg))
    agent.start()
    try:
        bad = capture(agent, "tryon")
        assert agent.wait_for(bad["job_id"], timeout=20).state == S.FAILED
        wait_until(
            lambda: agent.mode == "error" and "haiyi" in (agent.mode_detail or ""),
            timeout=5,
            what="the haiyi key alarm",
        )
        good = capture(agent, "cartoon")  # platform easy delivers: haiyi's key is still refused
        assert agent.wait_for(good["job_id"], timeout=20).state == S.DONE
        time.sleep(0.3)
        assert agent.mode == "error" and "haiyi" in (agent.mode_detail or "")
    finally:
        agent.stop()


def test_an_older_delivery_does_not_end_a_newer_failures_indication(make_agent, sim) -> None:
    agent = make_agent()
    sim.configure(latency=0.05)  # SLOW takes 30 x latency: 1.5 s
    slow = capture(agent, "oil", params={"prompt": "SLOW"})  # captured first, delivered last
    wait_until(lambda: agent.store.get(slow["job_id"]).state == S.SUBMITTED, what="slow job submitted")
    failing = capture(agent, "cartoon", params={"prompt": "FAIL"})
    assert agent.wait_for(failing["job_id"], timeout=20).state == S.FAILED
    assert agent.wait_for(slow["job_id"], timeout=30).state == S.DONE
    time.sleep(0.3)
    assert agent.mode == "error"  # the slow job was captured before the failure: it proves nothing
    newer = capture(agent, "cartoon")
    assert agent.wait_for(newer["job_id"], timeout=20).state == S.DONE
    wait_until(lambda: agent.mode == "ready", timeout=5, what="ready after a newer job was delivered")
    sim.configure(latency=0.2)


def test_retry_through_the_core_writes_job_json_at_once(make_agent, sim) -> None:
    agent = make_agent()
    res = capture(agent, "cartoon", params={"prompt": "FAIL"})
    job = agent.wait_for(res["job_id"], timeout=20)
    assert job.state == S.FAILED and job_json(job)["state"] == "failed"
    sim.configure(latency=5.0)  # the resubmit stays on the wire while job.json is read
    try:
        agent.request(Command("retry", "kiosk", job_id=job.id)).result(timeout=5)
        assert job_json(job)["state"] in ("captured", "submitting") and job_json(job)["error"] is None
    finally:
        sim.configure(latency=0.2)
    assert TEST_KEY not in (Path(job.result_dir) / "job.json").read_text()


def test_a_submitted_job_is_polled_by_the_endpoint_it_was_submitted_with(config_file, sim) -> None:
    """The profile changes endpoint while a task runs (a technician edits the config, restarts): the task is still
    polled where it lives. generate.image tasks are unknown to the apps.run poll route, so polling by the
    profile's new endpoint would lose the job."""
    gen = {
        "name": "gen",
        "platform": "haiyi",
        "endpoint": "generate.image",
        "prompt": "SLOW portrait",
        "model": {"provider": "google", "model": "gemini-3-pro-image-preview", "type": "image2image"},
    }
    sim.configure(latency=0.05)  # SLOW: 30 x latency on the simulated GPU
    try:
        a = Agent(load_config(config_file(profiles=[gen])))
        a.start()
        try:
            jid = capture(a, "gen")["job_id"]
            job = wait_until(lambda: (j := a.store.get(jid)).state == S.SUBMITTED and j, what="submitted")
        finally:
            a.stop()
        assert job.endpoint == "generate.image" and job.remote_task_id
        edited = {
            "name": "gen",
            "platform": "haiyi",
            "endpoint": "apps.run",
            "workflow_id": "1234",
            "prompt": "SLOW portrait",
        }
        b = Agent(load_config(config_file(profiles=[edited])))
        b.start()
        try:
            done = b.wait_for(jid, timeout=30)
        finally:
            b.stop()
        assert done.state == S.DONE, done.error
        assert done.endpoint == "generate.image" and done.outputs
    finally:
        sim.configure(latency=0.2)


def test_actions_take_full_job_ids_only(make_agent) -> None:
    """A short prefix is a CLI convenience (`queue cancel 3f2a`); over HTTP/MQTT it could be guessed."""
    from agent.commands import CommandError

    agent = make_agent()
    jid = capture(agent, "oil", params={"prompt": "SLOW"})["job_id"]
    for source in ("http", "mqtt", "kiosk"):
        with pytest.raises(CommandError) as e:
            agent.request(Command("cancel", source, job_id=jid[:8])).result(timeout=5)
        assert e.value.code == "not_found" and "full job id" in e.value.message
    assert agent.request(Command("cancel", "http", job_id=jid)).result(timeout=5)["state"] == "cancelled"
