"""Retention: finished jobs older than `keep_days` (or beyond `keep_results_gb`) go with their photo and results;
an unfinished job stays whatever its age; `queue purge --done --older-than DAYS` does it by hand."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from agent.config import load_config
from agent.jobs.model import JobState
from agent.runtime import Runtime
from tests.support.proc import run_cli

DAY = 86400.0


def _age(db: Path, job_ids: list[str], days: float) -> None:
    """Make jobs look `days` old (the store's own timestamps; the files on disk are what they are)."""
    with sqlite3.connect(db) as c:
        for j in job_ids:
            c.execute(
                "UPDATE jobs SET created_at = created_at - ?, updated_at = updated_at - ?, "
                "finished_at = CASE WHEN finished_at IS NULL THEN NULL ELSE finished_at - ? END WHERE id = ?",
                (days * DAY, days * DAY, days * DAY, j),
            )


def _booth(config_file, **queue) -> tuple[Path, list[str], str]:
    """Three done jobs and one waiting for a platform that is away; returns (config, done ids, waiting id)."""
    cfg = config_file(
        platforms={"away": {"kind": "easyai", "base_url": "http://127.0.0.1:9", "api_key_env": "EDGE_AGENT_TEST_KEY"}},
        profiles=[
            {"name": "cartoon", "platform": "easy", "endpoint": "images.edits", "model": "cartoon", "prompt": "x"},
            {"name": "later", "platform": "away", "endpoint": "images.edits", "model": "m", "prompt": "x"},
        ],
        queue={"keep_days": 30, **queue},
    )
    rt = Runtime(load_config(cfg), gpio=False)
    rt.start()
    try:
        a = rt.agent
        done = []
        for _ in range(3):
            jid = _capture(a, "cartoon")
            assert a.wait_for(jid, 30).state == JobState.DONE
            done.append(jid)
        waiting = _capture(a, "later")
        assert {e.name for e in rt.entries} >= {"core", "http", "retention"}
    finally:
        rt.stop()
    return cfg, done, waiting


def _capture(agent, profile: str) -> str:
    from agent.commands import Command

    return agent.request(Command("capture", "cli", profile=profile)).result(10)["job_id"]


def test_purge_done_older_than_keeps_new_and_unfinished_jobs(config_file) -> None:
    cfg, done, waiting = _booth(config_file)
    loaded = load_config(cfg)
    db = loaded.config.device.state_dir / "jobs.db"
    _age(db, [done[0], done[1], waiting], 40)

    dry = run_cli("queue", "purge", "-c", str(cfg), "--done", "--older-than", "30")
    assert dry.returncode == 0 and "2 job(s) and their photos and results would be deleted" in dry.stdout
    for j in done[:2]:
        assert j in dry.stdout
    assert done[2] not in dry.stdout and waiting not in dry.stdout

    dirs = {
        j: Path(json.loads(run_cli("queue", "show", "-c", str(cfg), j, "--json").stdout)["result_dir"])
        for j in [*done, waiting]
    }
    r = run_cli("queue", "purge", "-c", str(cfg), "--done", "--older-than", "30", "--yes")
    assert r.returncode == 0 and "purged 2 job(s)" in r.stdout
    assert not dirs[done[0]].exists() and not dirs[done[1]].exists()
    assert (dirs[done[2]] / "capture.jpg").is_file() and (dirs[waiting] / "capture.jpg").is_file()
    left = run_cli("queue", "list", "-c", str(cfg), "--json").stdout
    assert done[2] in left and waiting in left and done[0] not in left

    none = run_cli("queue", "purge", "-c", str(cfg))
    assert none.returncode == 2 and "--failed and/or --done" in none.stderr


def test_daemon_sweep_by_age_and_by_disk(config_file) -> None:
    cfg, done, waiting = _booth(config_file)
    loaded = load_config(cfg)
    _age(loaded.config.device.state_dir / "jobs.db", [done[0], waiting], 40)
    rt = Runtime(loaded, gpio=False)
    rt.start()
    try:
        svc = next(e.service for e in rt.entries if e.name == "retention")
        assert svc.sweep() == [done[0]]  # 40 days old and finished; the waiting one is kept however old
        store = rt.agent.store
        kept = store.get(waiting)
        assert kept is not None and not kept.state.final
        sizes = [store.get(j).capture_bytes + sum(o.size or 0 for o in store.get(j).outputs) for j in done[1:]]
        # room for the newest job only: the older of the two remaining goes
        rt.live.config.queue.keep_results_gb = (sizes[1] + 1) / 1024**3
        assert svc.sweep() == [done[1]]
        assert store.get(done[2]) is not None
    finally:
        rt.stop()
