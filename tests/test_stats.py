"""The booth owner's numbers: per day and per event, captures, done, failed by cause, prints, and the time from the
press to the result; they survive retention (deleted jobs leave their numbers) and are the same from the CLI and
`/api/stats`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from agent.commands import Command
from agent.config import load_config
from agent.jobs.model import JobState
from agent.runtime import Runtime
from agent.stats import cause_of
from tests.support.proc import run_cli


@pytest.mark.parametrize(
    ("state", "error", "cause"),
    [
        ("done", None, None),
        ("expired", "no answer from the platform within 1800 s", "deadline"),
        ("cancelled", "cancelled by kiosk", "cancelled"),
        ("failed", "HTTP 401 from 127.0.0.1: Unauthorized", "auth"),
        ("failed", "HTTP 400 from 127.0.0.1: bad size", "rejected"),
        ("failed", "output larger than max_download_mb (100 MB)", "download"),
        ("failed", "127.0.0.1:9: no answer (ConnectError)", "network"),
        ("failed", "EasyAI failed: simulated failure", "platform"),
        ("failed", "internal error: KeyError: 'x'", "other"),
    ],
)
def test_cause_of_a_failure(state: str, error: str | None, cause: str | None) -> None:
    assert cause_of(state, error) == cause


def test_stats_after_a_run_of_jobs_survive_retention(config_file) -> None:
    cfg = config_file(
        profiles=[
            {"name": "cartoon", "platform": "easy", "endpoint": "images.edits", "model": "cartoon", "prompt": "x"},
            {"name": "bad", "platform": "easy", "endpoint": "images.edits", "model": "m", "prompt": "FAIL"},
        ]
    )
    assert run_cli("stats", "-c", str(cfg), "--start-event", "Wedding A&B").returncode == 0
    rt = Runtime(load_config(cfg), gpio=False)
    rt.start()
    try:
        a = rt.agent
        ids = [a.request(Command("capture", "cli", profile=p)).result(10)["job_id"] for p in ["cartoon"] * 3 + ["bad"]]
        for j in ids:
            assert a.wait_for(j, 30).state.final
        assert a.store.get(ids[3]).state == JobState.FAILED
        api = httpx.get(f"{rt.api.url}/api/stats?days=2", timeout=5).json()
        assert httpx.get(f"{rt.api.url}/api/stats?days=x", timeout=5).status_code == 400
    finally:
        rt.stop()

    r = run_cli("stats", "-c", str(cfg), "--json", "--days", "2")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got == api  # one source of truth
    total = got["total"]
    assert (total["captures"], total["done"], total["failed"]) == (4, 3, 1)
    assert total["failed_by_cause"] == {"platform": 1}
    assert 0 < total["median_s"] <= total["p95_s"] < 30
    assert got["current_event"] == "Wedding A&B" and got["events"]["Wedding A&B"]["captures"] == 4
    [today] = got["days"].values()
    assert today["captures"] == 4

    text = run_cli("stats", "-c", str(cfg)).stdout
    assert "event Wedding A&B" in text and "platform 1" in text

    # retention deletes the photos, not the numbers
    db = load_config(cfg).config.device.state_dir / "jobs.db"
    with sqlite3.connect(db) as c:
        c.execute("UPDATE jobs SET created_at = created_at - 40 * 86400, finished_at = finished_at - 40 * 86400")
    purge = run_cli("queue", "purge", "-c", str(cfg), "--done", "--failed", "--older-than", "30", "--yes")
    assert "purged 4 job(s)" in purge.stdout
    assert json.loads(run_cli("queue", "list", "-c", str(cfg), "--json").stdout) == []
    after = json.loads(run_cli("stats", "-c", str(cfg), "--json", "--days", "60").stdout)
    assert after["total"] == total


def test_stats_without_a_queue_and_bad_event_name(config_file, tmp_path: Path) -> None:
    cfg = config_file()
    r = run_cli("stats", "-c", str(cfg))
    assert r.returncode == 0 and "no statistics yet" in r.stdout
    bad = run_cli("stats", "-c", str(cfg), "--start-event", "  ")
    assert bad.returncode == 2 and "needs a name" in bad.stderr
