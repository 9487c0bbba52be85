"""JobStore: compare-and-set transitions, ordering, durability settings, two processes on one database."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from agent.durable import write_durable
from agent.jobs.model import Job, JobState
from agent.jobs.retry import RetryPolicy
from agent.jobs.store import JobStore

S = JobState


def mk(i: int, **kw) -> Job:
    now = time.time()
    kw.setdefault("platform", "easy")
    return Job(
        id=f"job-{i:04d}",
        profile="p",
        source="cli",
        state=S.CAPTURED,
        created_at=now + i * 0.001,
        updated_at=now,
        capture_path="/x",
        **kw,
    )


def test_pragmas(tmp_path: Path) -> None:
    s = JobStore(tmp_path / "q.db")
    assert s._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert s.integrity_check() == "ok"


def test_each_commit_says_whether_it_waits_for_the_disk(tmp_path: Path) -> None:
    s = JobStore(tmp_path / "q.db")
    s.insert(mk(1))
    level = lambda: s._db.execute("PRAGMA synchronous").fetchone()[0]
    s.update("job-0001", (S.CAPTURED,), durable=False, progress=5)  # a poll's progress: NORMAL for that commit
    assert level() == 1
    s.insert(mk(2))  # a photo: FULL again, whatever came before
    assert level() == 2
    # a transaction opened inside another is a bug: refused clearly, and the store stays usable
    with pytest.raises(Exception, match="already open"), s._tx(), s._tx(durable=False):
        pass
    assert s.get("job-0002") is not None and s.counts() == {"captured": 2}


def test_transition_is_compare_and_set(tmp_path: Path) -> None:
    s = JobStore(tmp_path / "q.db")
    s.insert(mk(1))
    j = s.transition("job-0001", (S.CAPTURED,), S.SUBMITTING, note="go", attempts=1)
    assert j is not None and j.state == S.SUBMITTING and j.attempts == 1
    assert s.transition("job-0001", (S.CAPTURED,), S.SUBMITTING) is None  # lost the race: no change
    assert s.transition("job-0001", (S.SUBMITTING,), S.CANCELLED, note="by test") is not None
    assert s.transition("job-0001", (S.SUBMITTING,), S.SUBMITTED, remote_task_id="t") is None
    j = s.get("job-0001")
    assert j.state == S.CANCELLED and j.remote_task_id is None and j.finished_at is not None
    assert [h["state"] for h in j.history] == ["submitting", "cancelled"]


def test_due_orders_guests_before_backlog_and_respects_time(tmp_path: Path) -> None:
    s = JobStore(tmp_path / "q.db")
    now = time.time()
    s.insert(mk(1, priority=0))
    s.insert(mk(2, priority=0))
    s.insert(mk(3, priority=1))
    s.insert(mk(4, priority=1, next_attempt_at=now + 60))
    ids = [j.id for j in s.due(now, (S.CAPTURED,), limit=10)]
    assert ids == ["job-0003", "job-0001", "job-0002"]
    assert s.next_due_time((S.CAPTURED,)) == 0.0
    assert s.count_in((S.CAPTURED,)) == 4


def test_wake_only_network_waits_of_that_platform(tmp_path: Path) -> None:
    s = JobStore(tmp_path / "q.db")
    later = time.time() + 300
    s.insert(mk(1, next_attempt_at=later, wait_kind="network"))
    s.insert(mk(2, next_attempt_at=later, wait_kind="rate_limit"))
    s.insert(mk(3, next_attempt_at=later, wait_kind="network", platform="other"))
    assert s.wake("easy", "network") == 1
    assert [j.id for j in s.due(time.time() + 1, (S.CAPTURED,), 10)] == ["job-0001"]


def _writer(path: str, start: int, n: int) -> None:
    s = JobStore(Path(path))
    for i in range(start, start + n):
        s.insert(mk(i))
        s.transition(f"job-{i:04d}", (S.CAPTURED,), S.SUBMITTING)


def test_two_processes_share_the_queue(tmp_path: Path) -> None:
    """The daemon and `edge-agent queue ...` open the same database at once."""
    db = str(tmp_path / "q.db")
    JobStore(Path(db)).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(db, k * 100, 50)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert JobStore(Path(db)).counts() == {"submitting": 100}


def test_write_durable_replaces_atomically(tmp_path: Path) -> None:
    p = tmp_path / "a.jpg"
    write_durable(p, b"one")
    write_durable(p, b"two")
    assert p.read_bytes() == b"two"
    assert [x.name for x in tmp_path.iterdir()] == ["a.jpg"]  # no temp files left


def test_retry_policy_full_jitter_and_retry_after() -> None:
    import random

    pol = RetryPolicy(base_s=2.0, cap_s=60.0, rng=random.Random(1))
    delays = [pol.delay(n) for n in range(1, 12) for _ in range(50)]
    assert all(0.5 <= d <= 60.0 for d in delays)
    assert max(pol.delay(10) for _ in range(200)) > 30  # grows to the cap
    assert max(pol.delay(1) for _ in range(200)) <= 2.0
    assert pol.delay(1, retry_after=7.0) >= 7.0
    assert pol.wait_kind("http", 3.0) == "rate_limit"
    assert pol.wait_kind("network", None) == "network"
    assert pol.wait_kind("rejected", None) == "rate_limit"
