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
        assert [e.name for e in rt.entries] == ["core", "http"]
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
        assert [e.name for e in rt.entries] == ["core", "http"]  # the booth runs without buttons and LEDs
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
