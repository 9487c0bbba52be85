"""Races and recovery edge cases found by review of the 4/11 lifecycle: an answer that arrives after the job was
cancelled and retried, a rebuilt queue after a rename, the mode after a restart and after a full disk."""

from __future__ import annotations

import time
from pathlib import Path

from agent.commands import Command, CommandError
from agent.config import load_config
from agent.core import Agent
from tests.support.configs import base_config, merge, write_config
from tests.support.proc import wait_until


def _state(agent, jid):
    return agent.store.get(jid).state.value


def test_cancel_then_retry_while_a_submit_is_on_the_wire_does_not_fail_the_retried_job(make_agent, sim) -> None:
    sim.configure(latency=0.5)
    agent = make_agent(
        platforms={"easy": {"read_timeout_s": 1}},
        profiles=[
            {
                "name": "cartoon",
                "platform": "easy",
                "endpoint": "images.edits",
                "model": "cartoon",
                "prompt": "SLOW cartoon",
                "params": {"resolution": "1K", "n": 1},
            }
        ],
    )
    jid = agent.request(Command("capture", "http", profile="cartoon")).result(10)["job_id"]
    assert wait_until(lambda: _state(agent, jid) == "submitting", 10)
    agent.request(Command("cancel", "http", job_id=jid)).result(10)
    agent.request(Command("retry", "http", job_id=jid)).result(10)
    time.sleep(1.5)  # the first submit times out meanwhile: its answer must not move the retried job
    job = agent.store.get(jid)
    assert job.state.value != "failed", job.error
    sim.configure(latency=0.2)


def test_a_stale_submit_answer_does_not_fail_a_retried_job(make_agent, sim) -> None:
    sim.configure(latency=2.0)  # FAIL answers after half of it
    agent = make_agent(
        profiles=[
            {
                "name": "cartoon",
                "platform": "easy",
                "endpoint": "images.edits",
                "model": "cartoon",
                "prompt": "FAIL cartoon",
                "params": {"resolution": "1K", "n": 1},
            }
        ],
    )
    before = len(sim.record())
    jid = agent.request(Command("capture", "http", profile="cartoon")).result(10)["job_id"]
    assert wait_until(lambda: _state(agent, jid) == "submitting", 10)
    time.sleep(0.3)
    agent.request(Command("cancel", "http", job_id=jid)).result(10)
    agent.request(Command("retry", "http", job_id=jid)).result(10)
    assert wait_until(lambda: len(sim.record()) - before >= 2 or _state(agent, jid) == "failed", 10)
    # the retried job is sent again; the first request's failure does not fail it
    assert len(sim.record()) - before == 2, agent.store.get(jid).history
    sim.configure(latency=0.2)


def _damage(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    db.write_bytes(b"not a database" * 100)


def test_a_rebuild_does_not_show_an_old_failure_as_the_booths_mode(config_file, sim) -> None:
    path = config_file(
        profiles=[
            {
                "name": "cartoon",
                "platform": "easy",
                "endpoint": "images.edits",
                "model": "cartoon",
                "prompt": "FAIL",
                "params": {"resolution": "1K", "n": 1},
            }
        ]
    )
    a = Agent(load_config(path))
    a.start()
    jid = a.request(Command("capture", "http", profile="cartoon")).result(10)["job_id"]
    assert a.wait_for(jid, 10).state.value == "failed"
    a.stop()
    _damage(load_config(path).config.device.state_dir / "jobs.db")
    b = Agent(load_config(path))
    b.start()
    try:
        assert b.recovery.adopted == [jid]
        assert b.mode == "ready", (b.mode, b.mode_detail)  # an old failure is not a fault now
    finally:
        b.stop()


def test_an_adopted_submitted_job_follows_a_renamed_platform(tmp_path, sim) -> None:
    base = base_config(tmp_path, sim.url)
    oil = {"name": "oil", "platform": "easy", "endpoint": "ai.generations", "model": "oil", "prompt": "SLOW oil"}
    a = Agent(load_config(write_config(tmp_path / "c.toml", merge(base, {"profiles": [oil]}))))
    a.start()
    jid = a.request(Command("capture", "http", profile="oil")).result(10)["job_id"]
    assert wait_until(lambda: _state(a, jid) == "submitted", 10)
    a.stop()
    _damage(tmp_path / "state" / "jobs.db")
    renamed = dict(
        base,
        platforms={"easy2": base["platforms"]["easy"], "haiyi": base["platforms"]["haiyi"]},
        profiles=[dict(oil, platform="easy2")],
    )
    b = Agent(load_config(write_config(tmp_path / "c.toml", renamed)))
    b.start()
    try:
        job = b.wait_for(jid, 20)
        assert job.state.value == "done", job.error
    finally:
        b.stop()


def test_disk_full_ends_when_space_is_back_even_if_the_camera_then_fails(tmp_path, sim) -> None:
    from PIL import Image

    pics = tmp_path / "pics"
    pics.mkdir()
    Image.new("RGB", (320, 240), "red").save(pics / "a.jpg")
    cam = {"camera": {"driver": "file", "path": str(pics), "width": 320, "height": 240}}
    base = merge(base_config(tmp_path, sim.url), cam)
    agent = Agent(
        load_config(write_config(tmp_path / "full.toml", merge(base, {"queue": {"min_free_disk_mb": 10**9}})))
    )
    agent.start()
    try:
        try:
            agent.request(Command("capture", "http", profile="cartoon")).result(10)
        except CommandError as e:
            assert e.code == "disk_full"
        agent.events.flush()
        assert agent.mode == "disk_full"
        agent.live.swap(load_config(write_config(tmp_path / "ok.toml", base)))  # space is back
        (pics / "a.jpg").unlink()  # and the camera fails
        try:
            agent.request(Command("capture", "http", profile="cartoon")).result(10)
        except CommandError as e:
            assert e.code == "camera"
        agent.events.flush()
        assert agent.mode != "disk_full", agent.mode_detail
    finally:
        agent.stop()


def test_a_profile_moved_to_another_platform_keeps_polling_where_its_task_lives(config_file, sim) -> None:
    oil = {"name": "oil", "platform": "easy", "endpoint": "ai.generations", "model": "oil", "prompt": "SLOW oil"}
    sim.configure(latency=0.05)
    try:
        a = Agent(load_config(config_file(profiles=[oil])))
        a.start()
        jid = a.request(Command("capture", "http", profile="oil")).result(10)["job_id"]
        assert wait_until(lambda: _state(a, jid) == "submitted", 10)
        a.stop()
        moved = {"name": "oil", "platform": "haiyi", "endpoint": "apps.run", "workflow_id": "1", "prompt": "SLOW"}
        b = Agent(load_config(config_file(profiles=[moved])))
        b.start()
        try:
            job = b.wait_for(jid, 20)
            assert job.state.value == "done", job.error
            assert (job.platform, job.endpoint) == ("easy", "ai.generations")
        finally:
            b.stop()
    finally:
        sim.configure(latency=0.2)
