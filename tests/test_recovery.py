"""Start-up reconciliation after crashes and power cuts (deterministic cases; test_chaos.py does random ones)."""

from __future__ import annotations

import hashlib
import socket
from collections import Counter
from pathlib import Path

import pytest

from agent.commands import Command
from agent.config import load_config
from agent.core import Agent
from agent.jobs.model import JobState
from agent.steps.prepare import prepare_upload
from tests.support.proc import wait_until

S = JobState


@pytest.fixture(autouse=True)
def _fast_sim(sim):
    sim.configure(latency=0.1, fail_rate=0.0)
    yield
    sim.configure(latency=0.2)


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def start(cfg: Path) -> Agent:
    a = Agent(load_config(cfg))
    a.start()
    return a


def captured_offline(config_file, n: int) -> tuple[Path, list[str]]:
    """n photos taken while the platform is unreachable; returns the config file and job ids."""
    cfg = config_file(platforms={"easy": {"base_url": dead_url()}})
    a = start(cfg)
    ids = [a.request(Command("capture", "button")).result(10)["job_id"] for _ in range(n)]
    a.stop()
    return cfg, ids


def submits_of(sim, job) -> int:
    h = hashlib.sha256(prepare_upload(Path(job.capture_path).read_bytes(), 512, 85)).hexdigest()
    return Counter(r["image_sha256"] for r in sim.record())[h]


def test_row_without_its_photo_fails_with_the_reason(config_file) -> None:
    cfg, ids = captured_offline(config_file, 2)
    a = Agent(load_config(cfg))
    gone = a.store.get(ids[0])
    a.stop()
    Path(gone.capture_path).unlink()  # the SD card lost the file
    b = start(cfg)
    try:
        job = b.store.get(ids[0])
        assert job.state == S.FAILED
        assert job.error == f"the captured photo is missing after a restart: {gone.capture_path}"
        assert b.recovery.missing_files == [ids[0]]
        assert b.store.get(ids[1]).state in (S.CAPTURED, S.SUBMITTING)  # still trying the dead platform
    finally:
        b.stop()


def test_photo_without_a_row_is_adopted_and_delivered(config_file, tmp_path: Path) -> None:
    cfg, ids = captured_offline(config_file, 1)
    a = Agent(load_config(cfg))
    job = a.store.get(ids[0])
    a.store.delete([ids[0]])  # as if the power failed between the photo reaching the disk and the commit
    a.stop()
    # now the platform is back
    cfg = config_file()
    b = start(cfg)
    try:
        assert b.recovery.adopted == [ids[0]]
        done = b.wait_for(ids[0], timeout=20)
        assert done.state == S.DONE and done.capture_path == job.capture_path
        assert any("recovered from disk" in h.get("note", "") for h in done.history)
    finally:
        b.stop()


def test_job_caught_mid_submit_is_submitted_again_and_counted(config_file, sim) -> None:
    cfg, ids = captured_offline(config_file, 1)
    a = Agent(load_config(cfg))
    a.store.transition(ids[0], (S.CAPTURED,), S.SUBMITTING, attempts=1)  # the crash came mid-request
    a.stop()
    b = start(config_file())
    try:
        assert b.recovery.resubmit == [ids[0]]
        job = b.wait_for(ids[0], timeout=20)
        assert job.state == S.DONE and job.resubmits == 1
        assert any("interrupted mid-submit" in h.get("note", "") for h in job.history)
    finally:
        b.stop()


def test_submitted_job_resumes_polling_and_is_never_resubmitted(config_file, sim) -> None:
    cfg = config_file()
    a = start(cfg)
    jid = a.request(Command("capture", "cli", profile="oil", params={"prompt": "SLOW"})).result(10)["job_id"]
    job = wait_until(lambda: (j := a.store.get(jid)).state == S.SUBMITTED and j, what="submitted")
    a.stop()  # restart while the platform works on the task
    b = start(cfg)
    try:
        assert b.recovery.resumed_polls == 1
        done = b.wait_for(jid, timeout=30)
        assert done.state == S.DONE and done.remote_task_id == job.remote_task_id and done.resubmits == 0
        assert submits_of(sim, done) == 1
    finally:
        b.stop()


def test_damaged_database_is_rebuilt_from_job_json(config_file, sim, tmp_path: Path) -> None:
    cfg = config_file()
    a = start(cfg)
    done_id = a.request(Command("capture", "cli")).result(10)["job_id"]
    assert a.wait_for(done_id, timeout=20).state == S.DONE
    slow_id = a.request(Command("capture", "cli", profile="oil", params={"prompt": "SLOW"})).result(10)["job_id"]
    task = wait_until(lambda: (j := a.store.get(slow_id)).state == S.SUBMITTED and j, what="submitted").remote_task_id
    db = Path(a.store.path)
    a.stop()
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    db.write_bytes(b"this is not a database, the SD card ate it" * 100)

    b = start(cfg)
    try:
        assert b.recovery.integrity != "ok"
        assert list(db.parent.glob("jobs.db.damaged-*")), "the damaged file is kept for a post-mortem"
        assert sorted(b.recovery.adopted) == sorted([done_id, slow_id])
        assert b.store.get(done_id).state == S.DONE and b.store.get(done_id).outputs
        job = b.wait_for(slow_id, timeout=30)
        assert job.state == S.DONE and job.remote_task_id == task  # polled, not submitted again
        assert submits_of(sim, job) == 1
    finally:
        b.stop()


def test_job_of_a_removed_profile_fails_with_a_clear_reason(config_file) -> None:
    cfg, ids = captured_offline(config_file, 1)
    b = start(
        config_file(
            profiles=[{"name": "other", "platform": "easy", "endpoint": "images.edits", "model": "m", "prompt": "p"}]
        )
    )
    try:
        job = b.wait_for(ids[0], timeout=10)
        assert job.state == S.FAILED and job.error == "profile 'cartoon' is no longer in the config"
    finally:
        b.stop()


@pytest.mark.parametrize("loss", ["deleted", "zero_length"])
def test_a_lost_queue_requeues_photos_of_every_date_folder(config_file, loss: str) -> None:
    """After jobs.db is lost (deleted, or left 0 bytes, which SQLite calls healthy), every folder is looked at, not
    only the two newest dates: a booth offline for a week still sends its guests' photos."""
    cfg, ids = captured_offline(config_file, 3)
    a = Agent(load_config(cfg))
    jobs = [a.store.get(i) for i in ids]
    results = a.layout.root
    a.stop()
    for n, job in enumerate(jobs):  # spread the photos over old date folders
        old = results / f"2026-0{n + 1}-15" / job.id
        old.parent.mkdir(parents=True)
        Path(job.result_dir).rename(old)
    for d in [p for p in results.iterdir() if p.is_dir() and not any(p.iterdir())]:
        d.rmdir()
    db = Path(a.store.path)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    if loss == "deleted":
        db.unlink()
    else:
        db.write_bytes(b"")
    b = start(config_file())  # the platform answers again
    try:
        assert sorted(b.recovery.adopted) == sorted(ids)
        assert b.recovery.integrity == ("new" if loss == "deleted" else "the database file is empty (0 bytes)")
        for jid in ids:
            assert b.wait_for(jid, timeout=20).state == S.DONE
    finally:
        b.stop()


def test_a_rebuilt_queue_keeps_the_guests_choice_and_share_link(config_file) -> None:
    """The garment the guest picked and the QR code they scanned outlive a lost jobs.db."""
    cfg = config_file(
        platforms={"easy": {"base_url": dead_url()}},
        profiles=[
            {
                "name": "tryon",
                "platform": "easy",
                "endpoint": "images.edits",
                "model": "m",
                "choices": [{"id": "red", "params": {"color": "red"}}, {"id": "suit02", "params": {"color": "x"}}],
            }
        ],
    )
    a = start(cfg)
    jid = a.request(Command("capture", "kiosk", choice="suit02")).result(10)["job_id"]
    before = a.store.get(jid)
    db = Path(a.store.path)
    a.stop()
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    b = start(cfg)
    try:
        assert jid in b.recovery.adopted
        job = b.store.get(jid)
        assert job.choice == "suit02" and job.share_token == before.share_token and before.share_token
        assert job.capture_bytes == before.capture_bytes > 0  # (its priority: the backlog, its platform is away)
    finally:
        b.stop()
