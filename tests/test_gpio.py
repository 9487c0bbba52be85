"""Buttons and indicator LEDs, end to end: gpiozero MockFactory pins -> ButtonBoard -> a real Agent -> the
built-in simulator over real HTTP -> events -> IndicatorLeds -> MockFactory pins.

The only fake is the GPIO pins (gpiozero's own MockFactory); everything of the project is real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from gpiozero import LED, Button
from gpiozero.pins.mock import MockFactory

from agent.commands import Command
from agent.config import ButtonConfig, IndicatorsConfig, parse_config
from agent.core import Agent
from agent.events import Event, EventBus
from agent.simulator import SimConfig, Simulator
from hardware.gpio import ButtonBoard, GpioUnavailable
from hardware.indicators import IndicatorLeds

KEY_ENV = "EDGE_AGENT_TEST_GPIO_KEY"
REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sim():
    s = Simulator(SimConfig(port=0, api_keys=("sk-test",), latency=0.3, seed=7))
    url = s.start()
    try:
        yield s, url
    finally:
        s.stop()


class Recorder:
    """Everything the agent publishes, from before the first press (a real subscription on the real bus)."""

    def __init__(self, bus: EventBus) -> None:
        self.sub = bus.subscribe(maxsize=10_000)
        self.events: list[Event] = []

    def _pull(self, timeout: float) -> Event | None:
        ev = self.sub.get(timeout=timeout)
        if ev is not None:
            self.events.append(ev)
        return ev

    def wait(self, pred: Callable[[Event], bool], timeout: float = 20.0, what: str = "event") -> Event:
        for ev in self.events:
            if pred(ev):
                return ev
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            ev = self._pull(min(left, 0.2))
            if ev is not None and pred(ev):
                return ev
        raise AssertionError(f"no {what} within {timeout}s; saw {[e.type for e in self.events]}")

    def settle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._pull(min(left, 0.1))

    def job_ids(self, profile: str | None = None) -> set[str]:
        return {
            e.data["job_id"]
            for e in self.events
            if e.type == "job.captured" and (profile is None or e.data.get("profile") == profile)
        }

    def states(self, job_id: str) -> list[str]:
        return [e.type[4:] for e in self.events if e.type.startswith("job.") and e.data.get("job_id") == job_id
                and e.type != "job.progress"]


class Booth:
    """A real Agent with its config, plus the GPIO parts of a test."""

    def __init__(self, agent: Agent, factory: MockFactory) -> None:
        self.agent = agent
        self.factory = factory
        self.rec = Recorder(agent.events)
        self.boards: list[ButtonBoard] = []
        self.leds: list[IndicatorLeds] = []

    @property
    def config(self):
        return self.agent.config

    def board(self, factory: MockFactory | None = None, **kw: Any) -> ButtonBoard:
        b = ButtonBoard(self.config.buttons, self.agent, pin_factory=factory or self.factory, **kw)
        b.start()
        self.boards.append(b)
        return b

    def pin(self, n: int):
        return self.factory.pin(n)

    def wait_done(self, job_id: str, timeout: float = 20.0) -> None:
        self.rec.wait(lambda e: e.type == "job.done" and e.data.get("job_id") == job_id, timeout, f"job.done {job_id}")


@pytest.fixture
def booth(sim, tmp_path, monkeypatch):
    """make(buttons=[...], indicators={...}, latency=S) -> a started Booth; stopped at the end of the test."""
    simulator, url = sim
    monkeypatch.setenv(KEY_ENV, "sk-test")
    made: list[Booth] = []

    def make(buttons: list[dict], indicators: dict | None = None, latency: float = 0.3,
             before_start: Callable[[Booth], None] | None = None, camera: dict | None = None) -> Booth:
        simulator.configure(latency=latency)
        raw = {
            "device": {"id": "gpio-test", "state_dir": str(tmp_path / f"state{len(made)}")},
            "camera": camera or {"driver": "synthetic", "width": 320, "height": 240},
            "platforms": {
                "easy": {"kind": "easyai", "base_url": url, "api_key_env": KEY_ENV, "poll_interval_s": 0.1},
            },
            "profiles": [
                {"name": "cartoon", "platform": "easy", "endpoint": "images.edits", "model": "cartoon", "prompt": "x"},
                {"name": "sketch", "platform": "easy", "endpoint": "images.edits", "model": "cartoon", "prompt": "y"},
                # the simulator fails any task whose prompt contains FAIL
                {"name": "broken", "platform": "easy", "endpoint": "images.edits", "model": "cartoon",
                 "prompt": "FAIL"},
            ],
            "buttons": buttons,
            "indicators": indicators if indicators is not None else {"ready_led": 22, "busy_led": 23, "error_led": 24},
            "http": {"listen": "127.0.0.1:0"},
        }
        loaded = parse_config(raw, tmp_path / "config.toml")
        b = Booth(Agent(loaded), MockFactory())
        made.append(b)
        if before_start:
            before_start(b)
        b.agent.start()
        return b

    yield make
    for b in made:
        for board in b.boards:
            board.close()
        for leds in b.leds:
            leds.close()
        b.agent.stop()


def tap(pin, down_s: float = 0.08) -> None:
    """A clean press of a pull-up button (wired to ground): low, then high again."""
    pin.drive_low()
    time.sleep(down_s)
    pin.drive_high()


def chatter(pin, edges: int = 6, gap_s: float = 0.001) -> None:
    """A contact that bounces: `edges` low/high pairs a millisecond apart."""
    for _ in range(edges):
        pin.drive_low()
        time.sleep(gap_s)
        pin.drive_high()
        time.sleep(gap_s)


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.005)
    raise AssertionError(f"{what} not reached within {timeout}s")


def resolved(stats: dict[str, int]) -> int:
    return stats["accepted"] + stats["ignored_bounce"] + stats["ignored_busy"]


CAPTURE = {"pin": 17, "action": "capture", "profile": "cartoon"}


# ---------------------------------------------------------------------------------------------- buttons


def test_one_press_makes_exactly_one_job_that_gets_done(booth):
    b = booth([CAPTURE])
    board = b.board()
    assert set(board.buttons) == {17} and isinstance(board.buttons[17], Button)

    tap(b.pin(17))
    ev = b.rec.wait(lambda e: e.type == "job.captured", what="job.captured")
    assert ev.data["source"] == "button" and ev.data["profile"] == "cartoon"
    b.wait_done(ev.data["job_id"])
    b.rec.settle(0.4)

    assert b.rec.job_ids() == {ev.data["job_id"]}
    assert b.rec.states(ev.data["job_id"])[-1] == "done"
    assert board.stats == {"pressed": 1, "accepted": 1, "ignored_bounce": 0, "ignored_busy": 0, "held": 0,
                           "refused": 0}
    assert [c for _, c in board.sent] == [Command(action="capture", source="button", profile="cartoon")]


def test_contact_bounce_on_press_and_release_makes_one_job(booth):
    b = booth([CAPTURE])
    board = b.board()
    pin = b.pin(17)

    chatter(pin, edges=5)  # closing: five short contacts, then the finger holds the button down
    pin.drive_low()
    time.sleep(0.5)  # longer than the press gap: only the bounce time can tell the opening chatter from a press
    chatter(pin, edges=3)  # opening: it chatters again
    ev = b.rec.wait(lambda e: e.type == "job.captured")
    b.wait_done(ev.data["job_id"])
    b.rec.settle(0.4)

    assert b.rec.job_ids() == {ev.data["job_id"]}
    assert board.stats["pressed"] == 8  # every closing edge was seen (5 + 1 + 2 in the opening chatter) ...
    assert board.stats["accepted"] == 1  # ... one was a press
    assert board.stats["ignored_bounce"] == 7
    assert board.stats["ignored_busy"] == 0


def test_contact_bounce_on_a_button_with_a_hold_action_makes_one_job(booth):
    b = booth([{**CAPTURE, "hold_action": "capture", "hold_profile": "sketch", "hold_time_s": 1.0}])
    board = b.board()
    pin = b.pin(17)

    chatter(pin, edges=4)
    pin.drive_low()
    time.sleep(0.15)
    assert board.stats["accepted"] == 0, "closing chatter is not a short press; the button is still down"
    chatter(pin, edges=2)
    assert board.stats["accepted"] == 1
    ev = b.rec.wait(lambda e: e.type == "job.captured")
    b.wait_done(ev.data["job_id"])
    b.rec.settle(0.3)

    assert b.rec.job_ids() == {ev.data["job_id"]} and ev.data["profile"] == "cartoon"
    assert board.stats["accepted"] == 1 and board.stats["held"] == 0
    assert resolved(board.stats) == board.stats["pressed"] == 6  # 4 + 1 + 1 in the opening chatter


def test_a_double_tap_within_the_press_gap_is_one_press(booth):
    # a clean second press 0.1 s after the first (no chatter, nothing busy): the gap rule alone stops it
    b = booth([{"pin": 13, "action": "print"}])
    board = b.board()
    pin = b.pin(13)

    tap(pin, down_s=0.05)
    time.sleep(0.05)
    tap(pin, down_s=0.05)
    assert board.stats["accepted"] == 1 and board.stats["ignored_bounce"] == 1
    time.sleep(board.min_gap_s)
    tap(pin, down_s=0.05)  # a deliberate second press later is a press
    assert board.stats["accepted"] == 2
    assert [c for _, c in board.sent] == [Command(action="print", source="button")] * 2
    wait_until(lambda: board.stats["refused"] == 2, what="both print requests answered")  # nothing to print


def test_held_button_with_hold_action_fires_the_hold_action_once_only(booth):
    b = booth([{**CAPTURE, "hold_action": "capture", "hold_profile": "sketch", "hold_time_s": 0.3}])
    board = b.board()
    pin = b.pin(17)

    pin.drive_low()
    time.sleep(1.3)  # more than four hold times: gpiozero must not repeat, the release must not add a press
    pin.drive_high()
    ev = b.rec.wait(lambda e: e.type == "job.captured")
    b.wait_done(ev.data["job_id"])
    b.rec.settle(0.4)

    assert ev.data["profile"] == "sketch"
    assert b.rec.job_ids() == {ev.data["job_id"]}
    assert b.rec.job_ids("cartoon") == set()
    assert board.stats["held"] == 1 and board.stats["accepted"] == 1 and board.stats["pressed"] == 1

    # a short press on the same button is the press action, and it fires on RELEASE, not on press
    pin.drive_low()
    time.sleep(0.1)
    assert board.stats["accepted"] == 1, "a button with a hold action must wait for the release"
    pin.drive_high()
    assert board.stats["accepted"] == 2
    ev2 = b.rec.wait(lambda e: e.type == "job.captured" and e.data["profile"] == "cartoon")
    b.wait_done(ev2.data["job_id"])
    assert b.rec.job_ids() == {ev.data["job_id"], ev2.data["job_id"]}
    assert [c.profile for _, c in board.sent] == ["sketch", "cartoon"]


def test_held_button_without_hold_action_makes_one_job(booth):
    b = booth([{**CAPTURE, "hold_time_s": 0.2}])  # a hold time, but no hold action: holding means nothing
    board = b.board()
    pin = b.pin(17)

    pin.drive_low()
    time.sleep(1.0)
    assert board.stats["accepted"] == 1  # fired on the press edge, at once
    pin.drive_high()
    ev = b.rec.wait(lambda e: e.type == "job.captured")
    b.wait_done(ev.data["job_id"])
    b.rec.settle(0.4)

    assert b.rec.job_ids() == {ev.data["job_id"]}
    assert board.stats == {"pressed": 1, "accepted": 1, "ignored_bounce": 0, "ignored_busy": 0, "held": 0,
                           "refused": 0}


def test_press_while_the_previous_capture_is_pending_is_ignored(booth):
    # two capture buttons on one board (the booth's front and side): the debounce gap is per pin, so only the
    # busy lock-out can stop the second press
    b = booth([CAPTURE, {"pin": 27, "action": "capture", "profile": "sketch"}])
    board = b.board()

    b.pin(17).drive_low()
    assert board.capture_pending  # the request is with the agent; its future has not resolved yet
    b.pin(27).drive_low()
    b.pin(17).drive_high()
    b.pin(27).drive_high()
    assert board.stats["ignored_busy"] == 1
    assert board.stats_for(27)["ignored_busy"] == 1 and board.stats_for(17)["accepted"] == 1

    ev = b.rec.wait(lambda e: e.type == "job.captured")
    wait_until(lambda: not board.capture_pending, what="capture answered")
    b.wait_done(ev.data["job_id"])
    b.rec.settle(0.3)
    assert b.rec.job_ids() == {ev.data["job_id"]}

    tap(b.pin(27))  # once the capture is answered, the other button works again
    ev2 = b.rec.wait(lambda e: e.type == "job.captured" and e.data["job_id"] != ev.data["job_id"])
    assert ev2.data["profile"] == "sketch"
    b.wait_done(ev2.data["job_id"])
    assert board.stats == {"pressed": 3, "accepted": 2, "ignored_bounce": 0, "ignored_busy": 1, "held": 0,
                           "refused": 0}


def test_press_while_the_agent_is_capturing_is_ignored(booth):
    # a second board (think: a remote button box) on its own pins: its own lock is free, the agent's mode is not.
    # A big synthetic frame makes the capture last long enough to press during it.
    b = booth([CAPTURE], camera={"driver": "synthetic", "width": 4096, "height": 3072})
    first = b.board()
    other_factory = MockFactory()
    second = b.board(factory=other_factory)

    b.pin(17).drive_low()
    wait_until(lambda: b.agent.mode == "capturing", timeout=5, what="agent capturing")
    other_factory.pin(17).drive_low()
    capturing_at_press = b.agent.mode == "capturing"
    b.pin(17).drive_high()
    other_factory.pin(17).drive_high()
    assert capturing_at_press, "the capture was too quick for this test"
    assert second.stats["ignored_busy"] == 1 and second.stats["accepted"] == 0
    assert first.stats["accepted"] == 1

    ev = b.rec.wait(lambda e: e.type == "job.captured", timeout=30)
    b.rec.settle(0.3)
    assert b.rec.job_ids() == {ev.data["job_id"]}


def test_cancel_retry_and_print_buttons_send_the_right_commands(booth):
    b = booth(
        [
            {"pin": 17, "action": "capture", "profile": "cartoon"},
            {"pin": 27, "action": "capture", "profile": "broken"},
            {"pin": 5, "action": "cancel"},
            {"pin": 6, "action": "retry"},
            {"pin": 13, "action": "print"},
        ],
        latency=1.5,
    )
    board = b.board()

    # cancel: the job being processed
    tap(b.pin(17))
    ev = b.rec.wait(lambda e: e.type in ("job.submitting", "job.submitted"))
    job = ev.data["job_id"]
    tap(b.pin(5))
    b.rec.wait(lambda e: e.type == "job.cancelled" and e.data["job_id"] == job, what="job.cancelled")
    assert board.sent[-1] == (5, Command(action="cancel", source="button"))

    # retry: the last failed job goes round again (and the simulator fails it again)
    tap(b.pin(27))
    first_fail = b.rec.wait(lambda e: e.type == "job.failed", what="job.failed")
    failed = first_fail.data["job_id"]
    tap(b.pin(6))
    again = b.rec.wait(lambda e: e.type == "job.captured" and e.data["job_id"] == failed and e.seq > first_fail.seq,
                       what="the failed job captured again by retry")
    b.rec.wait(lambda e: e.type == "job.failed" and e.data["job_id"] == failed and e.seq > again.seq,
               what="the retried job failing again")
    assert board.sent[-1] == (6, Command(action="retry", source="button"))
    assert b.rec.states(failed).count("captured") == 2

    # print: printing is off in this config, so the agent refuses it; the board counts the refusal
    tap(b.pin(13))
    wait_until(lambda: board.stats["refused"] == 1, what="print refused")
    assert board.sent[-1] == (13, Command(action="print", source="button"))
    assert board.stats["accepted"] == 5 and board.stats["ignored_busy"] == 0
    # the cancelled and the failed photo are the only jobs: cancel/retry/print never made one
    assert b.rec.job_ids() == {job, failed}


def test_close_releases_the_pins_and_is_idempotent(booth):
    b = booth([CAPTURE])
    board = b.board()
    board.close()
    board.close()
    assert board.buttons == {}
    Button(17, pin_factory=b.factory).close()  # the pin is free again


# ---------------------------------------------------------------------------------------------- LEDs, real jobs


def lit(leds: IndicatorLeds) -> dict[str, bool]:
    return {role: led.is_lit for role, led in leds.leds.items()}


def follow_leds(b: Booth, cfg: IndicatorsConfig | None = None) -> tuple[IndicatorLeds, list[tuple]]:
    """Start LEDs on the agent's bus, plus a listener registered after them that snapshots the LEDs on each
    agent.mode event (callbacks run in order on the bus thread, so it sees exactly what the event did)."""
    leds = IndicatorLeds(cfg or b.config.indicators, b.agent.events, pin_factory=b.factory)
    leds.start()
    b.leds.append(leds)
    seen: list[tuple] = []

    def snap(ev: Event) -> None:
        if ev.type == "agent.mode":
            seen.append((ev.data["mode"], leds.patterns(), lit(leds)))

    b.agent.events.on_event(snap)
    return leds, seen


def on_periods(pin) -> list[float]:
    """How long each completed 'on' of a MockPin lasted (from its state history)."""
    return on_periods_since(pin, 1)


def on_periods_since(pin, mark: int) -> list[float]:
    """Completed 'on' periods that ended at or after history entry `mark` (MockPin.states[i].timestamp is the
    time since the previous change)."""
    st = list(pin.states)
    return [st[i + 1].timestamp for i in range(max(mark - 1, 0), len(st) - 1) if st[i].state and not st[i + 1].state]


def test_leds_follow_a_real_job_ready_capturing_processing_done(booth):
    holder: dict[str, Any] = {}
    b = booth([CAPTURE], latency=1.2, before_start=lambda bo: holder.update(zip(("leds", "seen"), follow_leds(bo))))
    leds, seen = holder["leds"], holder["seen"]
    board = b.board()
    wait_until(lambda: leds.mode == "ready", what="ready")
    assert lit(leds) == {"ready": True, "busy": False, "error": False}

    tap(b.pin(17))
    ev = b.rec.wait(lambda e: e.type == "job.captured")
    b.wait_done(ev.data["job_id"])
    wait_until(lambda: leds.mode == "ready", what="ready again")
    time.sleep(0.1)

    modes = [m for m, _, _ in seen]
    assert modes[:1] == ["ready"] and modes[-1] == "ready"
    assert "capturing" in modes and "processing" in modes
    assert modes.index("capturing") < modes.index("processing")
    by_mode = {m: (p, l) for m, p, l in seen}
    assert by_mode["capturing"] == ({"ready": "off", "busy": "on", "error": "off"},
                                    {"ready": False, "busy": True, "error": False})
    assert by_mode["processing"][0] == {"ready": "off", "busy": (0.25, 0.25), "error": "off"}
    assert by_mode["ready"][1] == {"ready": True, "busy": False, "error": False}

    # the busy LED really blinked: completed 'on' periods of about 0.25 s in the pin's history
    blinks = [t for t in on_periods(b.pin(23)) if 0.15 < t < 0.4]
    assert len(blinks) >= 2, b.pin(23).states
    assert not b.pin(23).state and b.pin(22).state and not b.pin(24).state
    assert all(not s.state for s in b.pin(24).states)  # the error LED never came on
    assert board.stats["accepted"] == 1


def test_leds_started_after_the_agent_show_its_current_mode(booth):
    # the daemon starts GPIO after the agent: the "ready" event is already gone, start(mode=...) covers it
    b = booth([CAPTURE])
    assert b.agent.mode == "ready"
    leds = IndicatorLeds(b.config.indicators, b.agent.events, pin_factory=b.factory)
    leds.start(mode=b.agent.mode)
    b.leds.append(leds)
    assert leds.mode == "ready" and lit(leds) == {"ready": True, "busy": False, "error": False}

    b.board()
    tap(b.pin(17))
    b.wait_done(b.rec.wait(lambda e: e.type == "job.captured").data["job_id"])
    wait_until(lambda: leds.mode == "ready" and b.pin(23).states[-1].state is False and len(b.pin(23).states) > 1,
               what="back to ready after the job")
    assert lit(leds) == {"ready": True, "busy": False, "error": False}


def test_leds_show_error_after_a_failed_job(booth):
    holder: dict[str, Any] = {}
    b = booth([{"pin": 27, "action": "capture", "profile": "broken"}, CAPTURE],
              before_start=lambda bo: holder.update(zip(("leds", "seen"), follow_leds(bo))))
    leds, seen = holder["leds"], holder["seen"]
    b.board()

    tap(b.pin(27))
    b.rec.wait(lambda e: e.type == "job.failed", what="job.failed")
    wait_until(lambda: leds.mode == "error", what="error mode")
    assert lit(leds) == {"ready": False, "busy": False, "error": True}
    assert leds.patterns() == {"ready": "off", "busy": "off", "error": "on"}
    assert [m for m, _, _ in seen] == ["ready", "capturing", "processing", "error"]

    # the booth still takes photos while it shows the fault: busy while working, then ready again, because a
    # delivered photo ends the error indication
    tap(b.pin(17))
    ev = b.rec.wait(lambda e: e.type == "job.captured" and e.data["profile"] == "cartoon")
    b.wait_done(ev.data["job_id"])
    wait_until(lambda: leds.mode == b.agent.mode and len(seen) >= 7, what="LEDs caught up with the agent")
    assert [m for m, _, _ in seen][4:] == ["capturing", "processing", "ready"]
    assert seen[4][2]["busy"] is True and seen[5][1]["busy"] == (0.25, 0.25)
    assert lit(leds)["busy"] is False


# ---------------------------------------------------------------------------------------------- LEDs, the table

ALL3 = {"ready_led": 22, "busy_led": 23, "error_led": 24}
NO_ERROR_LED = {"ready_led": 22, "busy_led": 23}

# (mode, LEDs configured) -> what each present LED shows
TABLE = [
    ("starting", ALL3, {"ready": "off", "busy": "on", "error": "off"}),
    ("ready", ALL3, {"ready": "on", "busy": "off", "error": "off"}),
    ("capturing", ALL3, {"ready": "off", "busy": "on", "error": "off"}),
    ("processing", ALL3, {"ready": "off", "busy": (0.25, 0.25), "error": "off"}),
    ("offline", ALL3, {"ready": (1.0, 1.0), "busy": "off", "error": "off"}),
    ("error", ALL3, {"ready": "off", "busy": "off", "error": "on"}),
    ("disk_full", ALL3, {"ready": "off", "busy": "off", "error": (0.5, 0.5)}),
    ("ready", NO_ERROR_LED, {"ready": "on", "busy": "off"}),
    ("processing", NO_ERROR_LED, {"ready": "off", "busy": (0.25, 0.25)}),
    ("offline", NO_ERROR_LED, {"ready": (1.0, 1.0), "busy": "off"}),
    ("error", NO_ERROR_LED, {"ready": (0.1, 0.1), "busy": "off"}),
    ("disk_full", NO_ERROR_LED, {"ready": (0.1, 0.1), "busy": "off"}),
    ("ready", {"busy_led": 23}, {"busy": "off"}),
    ("processing", {"busy_led": 23}, {"busy": (0.25, 0.25)}),
    ("error", {"error_led": 24}, {"error": "on"}),
]
PINS = {"ready": 22, "busy": 23, "error": 24}


@pytest.fixture
def bus():
    b = EventBus()
    yield b
    b.close()


def publish_and_wait(bus: EventBus, leds: IndicatorLeds, mode: str, **data: Any) -> None:
    done = threading.Event()

    def marker(ev: Event) -> None:  # registered after the LEDs: runs once they have handled the event
        if ev.type == "test.marker":
            done.set()

    bus.on_event(marker)
    bus.publish("agent.mode", mode=mode, **data)
    bus.publish("test.marker")
    assert done.wait(5)
    bus.remove_callback(marker)


@pytest.mark.parametrize("mode,pins,want", TABLE, ids=[f"{m}-{'+'.join(p)}" for m, p, _ in TABLE])
def test_led_table(bus, mode, pins, want):
    factory = MockFactory()
    leds = IndicatorLeds(IndicatorsConfig(**pins), bus, pin_factory=factory)
    leds.start()
    try:
        assert set(leds.leds) == set(want)  # unconfigured LEDs are simply absent
        assert all(isinstance(led, LED) for led in leds.leds.values())
        publish_and_wait(bus, leds, "ready")  # from a known state, so every change is visible
        publish_and_wait(bus, leds, mode, detail="test")
        assert leds.mode == mode
        assert leds.patterns() == want
        pins_ = {role: factory.pin(PINS[role]) for role in want}
        mark = {role: len(p.states) for role, p in pins_.items()}
        for role, pattern in want.items():
            if pattern in ("on", "off"):
                assert leds.leds[role].is_lit is (pattern == "on"), role
        for role, pattern in want.items():
            if pattern not in ("on", "off"):  # really blinking: an 'on' of about on_s, after the switch
                on_s, _ = pattern
                pin = pins_[role]
                wait_until(lambda: any(0.7 * on_s < t < on_s + 0.2 for t in on_periods_since(pin, mark[role])),
                           timeout=on_s + 1.0, what=f"{role} LED blinking {pattern} in {mode}")
        for role, pattern in want.items():
            if pattern in ("on", "off"):  # steady: no change since the switch
                assert len(pins_[role].states) == mark[role], f"{role} LED must be steady in {mode}"
    finally:
        leds.close()


def test_led_repeated_mode_keeps_blinking_in_phase_and_unknown_modes_change_nothing(bus):
    factory = MockFactory()
    leds = IndicatorLeds(IndicatorsConfig(**ALL3), bus, pin_factory=factory)
    leds.start()
    try:
        publish_and_wait(bus, leds, "processing")
        thread = leds.leds["busy"]._blink_thread
        publish_and_wait(bus, leds, "processing", detail="again")
        assert leds.leds["busy"]._blink_thread is thread
        publish_and_wait(bus, leds, "warp-speed")
        assert leds.mode == "processing" and leds.patterns()["busy"] == (0.25, 0.25)
        publish_and_wait(bus, leds, "ready")
        assert lit(leds) == {"ready": True, "busy": False, "error": False}
    finally:
        leds.close()
    assert leds.leds == {}
    LED(23, pin_factory=factory).close()  # the pins were released


def test_led_start_with_initial_mode_and_close_unsubscribes(bus):
    factory = MockFactory()
    leds = IndicatorLeds(IndicatorsConfig(**ALL3), bus, pin_factory=factory)
    leds.start(mode="ready")
    assert lit(leds) == {"ready": True, "busy": False, "error": False}
    leds.close()
    publish_and_wait_plain(bus, "error")
    assert leds.mode == "ready"


def publish_and_wait_plain(bus: EventBus, mode: str) -> None:
    done = threading.Event()
    cb = lambda ev: done.set() if ev.type == "test.marker" else None  # noqa: E731
    bus.on_event(cb)
    bus.publish("agent.mode", mode=mode)
    bus.publish("test.marker")
    assert done.wait(5)
    bus.remove_callback(cb)


def test_no_leds_configured_needs_no_gpio(bus):
    leds = IndicatorLeds(IndicatorsConfig(), bus)  # no pin factory is even looked for
    leds.start()
    publish_and_wait_plain(bus, "ready")
    assert leds.mode == "ready" and leds.leds == {}
    leds.close()


# ---------------------------------------------------------------------------------------------- no GPIO here

NO_GPIO_SCRIPT = r"""
import json
from agent.config import ButtonConfig, IndicatorsConfig
from agent.events import EventBus
from hardware.gpio import ButtonBoard, GpioUnavailable
from hardware.indicators import IndicatorLeds

out = {"check": list(ButtonBoard.check())}
try:
    ButtonBoard([ButtonConfig(pin=17)], agent=None).start()
except GpioUnavailable as e:
    out["buttons"] = str(e)
bus = EventBus()
try:
    IndicatorLeds(IndicatorsConfig(ready_led=22), bus).start()
except GpioUnavailable as e:
    out["leds"] = str(e)
print(json.dumps(out))
"""


def test_no_pin_factory_raises_gpio_unavailable_with_a_clear_message():
    import json

    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "nonexistent", "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", NO_GPIO_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=30, cwd=REPO)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    ok, msg = out["check"]
    assert ok is False
    for text in (msg, out["buttons"]):
        assert text.startswith("no GPIO pin factory available: ")
        assert "'nonexistent'" in text
        assert "on a Raspberry Pi install python3-lgpio / run as a user in the gpio group" in text
        assert text.endswith("buttons are disabled")
    assert out["leds"].startswith("no GPIO pin factory available: ")
    assert out["leds"].endswith("indicator LEDs are disabled")


def test_check_with_a_working_pin_factory():
    ok, msg = ButtonBoard.check(MockFactory())
    assert ok is True and "MockFactory" in msg


def test_a_pin_that_cannot_be_used_raises_gpio_unavailable_and_holds_no_pin(bus):
    factory = MockFactory()
    taken = Button(17, pin_factory=factory)  # something else already owns pin 17
    try:
        board = ButtonBoard([ButtonConfig(pin=27), ButtonConfig(pin=17)], agent=None, pin_factory=factory)
        with pytest.raises(GpioUnavailable, match=r"GPIO pin 17 cannot be used as a button: .*buttons are disabled"):
            board.start()
        Button(27, pin_factory=factory).close()  # pin 27, created before the failure, was given back

        with pytest.raises(GpioUnavailable, match=r"GPIO pin 99 cannot be used as a button"):
            ButtonBoard([ButtonConfig(pin=99)], agent=None, pin_factory=factory).start()

        leds = IndicatorLeds(IndicatorsConfig(ready_led=22, busy_led=17), bus, pin_factory=factory)
        with pytest.raises(GpioUnavailable, match=r"GPIO pin 17 cannot be used for the busy LED: .*LEDs are disabled"):
            leds.start()
        LED(22, pin_factory=factory).close()
    finally:
        taken.close()
