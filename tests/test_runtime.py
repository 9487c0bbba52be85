"""The runtime of services: one composition root for `run` and `demo`, services started in order and stopped in
reverse, a dead service named for the watchdog, missing GPIO left out with the technician's message."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx

from agent.config import load_config
from agent.runtime import Runtime
from tests.support.proc import wait_until


def test_services_start_in_order_and_a_dead_one_is_named(config_file) -> None:
    rt = Runtime(load_config(config_file()), gpio=False)
    rt.start()
    try:
        assert [e.name for e in rt.entries] == ["core", "http", "retention"]
        assert rt.dead() == []
        with httpx.Client(base_url=rt.api.url, timeout=5) as http:
            assert http.get("/api/state").json()["mode"] in ("starting", "ready")
        rt.agent.scheduler.stop()  # as if the scheduler thread had died
        wait_until(lambda: rt.dead() == ["core"], timeout=5, what="the core reported dead")
    finally:
        rt.stop()
    assert rt.entries == []


def test_missing_gpio_is_left_out_with_the_reason(config_file, monkeypatch, caplog) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "nonexistent")
    cfg = config_file(buttons=[{"pin": 17, "action": "capture"}], indicators={"ready_led": 22})
    rt = Runtime(load_config(cfg))
    with caplog.at_level(logging.ERROR):
        rt.start()
    try:
        assert [e.name for e in rt.entries] == ["core", "http", "retention"]  # the booth runs without buttons and LEDs
        assert rt.dead() == []
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "buttons are disabled" in text
    finally:
        rt.stop()


def test_config_is_read_through_the_current_snapshot(config_file, tmp_path: Path) -> None:
    """Services hold the live snapshot, not copies: swapping it changes what they read next."""
    rt = Runtime(load_config(config_file()), gpio=False)
    rt.start()
    try:
        assert rt.agent.scheduler.config.queue.task_deadline_s == 1800
        other = load_config(config_file(queue={"task_deadline_s": 42}))
        old = rt.live.swap(other)
        assert old.config.queue.task_deadline_s == 1800
        assert rt.agent.config.queue.task_deadline_s == 42
        assert rt.agent.scheduler.config.queue.task_deadline_s == 42
    finally:
        rt.stop()


def test_a_step_running_far_too_long_makes_the_core_not_alive(config_file, sim) -> None:
    """The watchdog sees a stuck job pool: a step past twice its longest request (plus a margin) counts as stuck."""
    import time

    from agent.commands import Command

    sim.configure(latency=1.5)  # images.edits is synchronous: the submit step runs while the GPU works
    rt = Runtime(load_config(config_file()), gpio=False)
    rt.start()
    try:
        jid = rt.agent.request(Command("capture", "kiosk", profile="cartoon")).result(10)["job_id"]
        wait_until(lambda: rt.agent.store.get(jid).state.value == "submitting", what="submit running")
        sched = rt.agent.scheduler
        assert sched.stuck() == [] and sched.alive  # running, not stuck
        later = time.monotonic() + sched._step_limit() + 1
        assert sched.stuck(now=later) == [jid]  # the same step, seen after the limit
        rt.agent.wait_for(jid, timeout=20)
        assert sched.stuck(now=later) == []
    finally:
        sim.configure(latency=0.2)
        rt.stop()
