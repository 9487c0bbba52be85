"""Adaptive polling (agent/scheduler/pacing.py): rare polls while a task's end is far, frequent ones around it,
bounded both ways, slower after a 429; and end to end against the simulator, which records every poll and when
each task really ended."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from agent.commands import Command
from agent.jobs.model import JobState
from agent.scheduler.pacing import Bounds, Estimate, gap_for
from tests.support.sim import running_sim

B = Bounds.of(0.2, 2.0, 15.0)


def test_without_any_estimate_the_plain_interval_and_slower_while_queued() -> None:
    assert gap_for(None, B) == 2.0
    assert gap_for(None, B, queue_position=4) == pytest.approx(6.0)
    assert gap_for(None, B, queue_position=100) == 15.0  # never beyond poll_max_s


def test_a_queue_of_short_tasks_is_polled_by_their_typical_time() -> None:
    assert gap_for(None, B, queue_position=1, task_s=0.5) == pytest.approx(0.5)  # not 3 s for half-second tasks
    assert gap_for(None, B, queue_position=2, task_s=0.01) == B.floor  # never under poll_min_s
    assert gap_for(None, B, queue_position=1, task_s=30.0) == pytest.approx(3.0)  # long tasks: the plain rule


def test_far_from_the_end_it_sleeps_to_the_window_but_never_past_the_ceiling() -> None:
    assert gap_for(Estimate(8.5, 0.5, "platform"), B) == pytest.approx(8.0)
    assert gap_for(Estimate(100.0, 0.5, "platform"), B) == 15.0


def test_inside_the_window_it_polls_fast_bounded_by_the_floor_and_the_plain_interval() -> None:
    assert gap_for(Estimate(0.3, 0.5, "platform"), B) == pytest.approx(0.2)  # floor
    assert gap_for(Estimate(1.0, 1.2, "history"), B) == pytest.approx(0.4)  # a third of the half-width
    assert gap_for(Estimate(5.0, 30.0, "history"), B) == 2.0  # a vague estimate never polls faster than plain


def test_overdue_it_backs_off_towards_the_plain_interval() -> None:
    gaps = [gap_for(Estimate(-x, 0.5, "history"), B) for x in (1, 3, 10, 100)]
    assert gaps == sorted(gaps) and gaps[0] < 1.0 and gaps[-1] == 2.0


def test_bounds_in_the_wrong_order_still_hold_the_floor() -> None:
    b = Bounds.of(5.0, 2.0, 1.0)
    assert b.floor <= b.plain <= b.ceiling
    assert gap_for(Estimate(0.0, 0.1, "platform"), b) >= b.floor


def _polls(sim: Any, task_id: str) -> list[float]:
    return [r["ts"] for r in sim.board.requests() if r["path"] == f"/v1/ai/result/{task_id}"]


def _task(sim: Any, task_id: str) -> dict[str, Any]:
    return next(t for t in sim.tasks() if str(t["task_id"]) == task_id)


@pytest.mark.parametrize("quirks", [(), ("no_time_remained",)], ids=["time_remained", "progress_and_history"])
def test_a_task_is_seen_finished_soon_after_its_end_with_few_polls(make_agent: Any, quirks: tuple[str, ...]) -> None:
    with running_sim(latency=2.0, workers=8, quirks=quirks) as sim:
        agent = make_agent(platforms={"easy": {"base_url": sim.url, "poll_interval_s": 2.0}})
        delays, counts = [], []
        for _ in range(4):  # the later ones have this device's history of the profile
            jid = agent.request(Command("capture", "button", profile="oil")).result(30)["job_id"]
            job = agent.wait_for(jid, timeout=60)
            assert job.state == JobState.DONE, job.error
            seen = next(e["ts"] for e in job.history if e["state"] == JobState.DOWNLOADING.value)
            task = _task(sim, job.remote_task_id or "")
            delays.append(seen - task["end"])
            counts.append(len(_polls(sim, job.remote_task_id or "")))
        assert all(0 <= d < 0.5 for d in delays), delays  # the fixed 2 s interval waits 1 s on average
        assert max(counts) <= 8, counts  # 2 s at a fixed 0.2 s would be 10 polls
        assert agent.scheduler.eta.task_times("oil"), "task times are kept per profile"


def test_a_429_on_polls_raises_the_platforms_floor(make_agent: Any, tmp_path: Path) -> None:
    with running_sim(latency=2.0, workers=8) as sim:
        agent = make_agent(platforms={"easy": {"base_url": sim.url, "poll_interval_s": 1.0, "poll_min_s": 0.2}})
        sched = agent.scheduler
        b = sched._bounds("easy", 0.0)
        assert b.floor == pytest.approx(0.2)
        sched.pacer.rate_limited("easy", b, 0.0)
        sched.pacer.rate_limited("easy", sched._bounds("easy", 0.0), 0.0)
        assert sched._bounds("easy", 1.0).floor == pytest.approx(0.8)  # doubled twice
        assert sched._bounds("easy", 1.0).floor <= 4.0  # never past 4x the plain interval
        assert sched._bounds("easy", 61.0).floor == pytest.approx(0.2)  # a minute later it is back


def test_a_slot_is_free_as_soon_as_a_task_is_seen_finished(make_agent: Any) -> None:
    """20 tasks of 0.3 s through one in-flight slot: the drain is bound by the server, not by a poll interval."""
    with running_sim(latency=0.3, workers=1) as sim:
        agent = make_agent(
            platforms={"easy": {"base_url": sim.url, "poll_interval_s": 2.0}}, queue={"max_in_flight": 1}
        )
        t0 = time.monotonic()
        ids = [agent.request(Command("capture", "button", profile="oil")).result(30)["job_id"] for _ in range(20)]
        for jid in ids:
            assert agent.wait_for(jid, timeout=60).state == JobState.DONE
        took = time.monotonic() - t0
        assert took < 20 * 0.3 * 2.0, took  # a 2 s poll would hold each slot 2 s: 40 s
