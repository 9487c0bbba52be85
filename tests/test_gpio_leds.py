"""Indicator LEDs: a real Agent's ``agent.mode`` events -> LedService -> IndicatorLeds -> gpiozero MockFactory pins,
and the mode table on the LEDs alone.

The only fake is the GPIO pins (gpiozero's own MockFactory); everything of the project is real.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero import LED
from gpiozero.pins.mock import MockFactory

from agent.devices import LedService
from agent.events import Event, EventBus
from hardware.indicators import IndicatorLeds, LedPins
from tests.support.gpio import ALL_LEDS, CAPTURE, Booth, BoothMaker, lit, on_periods_since, tap
from tests.support.proc import wait_until


@pytest.fixture
def booth(sim: Any, config_file: Any) -> Iterator[BoothMaker]:
    maker = BoothMaker(sim, config_file)
    yield maker
    maker.close()


def follow_leds(b: Booth) -> tuple[IndicatorLeds, list[tuple[str, Any, Any]]]:
    """Start the LED service on the agent's bus, plus a listener registered after it that snapshots the LEDs on
    each agent.mode event (callbacks run in order on the bus thread, so it sees exactly what the event did)."""
    leds = b.led_service().leds
    assert leds is not None
    seen: list[tuple[str, Any, Any]] = []

    def snap(ev: Event) -> None:
        if ev.type == "agent.mode":
            seen.append((ev.data["mode"], leds.patterns(), lit(leds)))

    b.agent.events.on_event(snap)
    return leds, seen


def publish_and_wait(bus: EventBus, mode: str, **data: Any) -> None:
    """Publish an agent.mode event and return once every listener registered before now has handled it."""
    done = threading.Event()

    def marker(ev: Event) -> None:
        if ev.type == "test.marker":
            done.set()

    bus.on_event(marker)
    bus.publish("agent.mode", mode=mode, **data)
    bus.publish("test.marker")
    assert done.wait(5)
    bus.remove_callback(marker)


# ---------------------------------------------------------------------------------------------- real jobs


def test_leds_follow_a_real_job_ready_capturing_processing_done(booth: BoothMaker) -> None:
    holder: dict[str, Any] = {}
    b = booth([CAPTURE], latency=1.2, before_start=lambda bo: holder.update(following=follow_leds(bo)))
    leds, seen = holder["following"]
    board = b.buttons()
    wait_until(lambda: leds.mode == "ready", what="ready")
    assert lit(leds) == {"ready": True, "busy": False, "error": False}

    tap(b.pin(17))
    ev = b.rec.wait(lambda e: e.type == "job.captured")
    b.wait_done(ev.data["job_id"])
    wait_until(lambda: seen and seen[-1][0] == "ready" and leds.mode == "ready", what="ready again")

    modes = [m for m, _, _ in seen]
    assert modes[:1] == ["ready"] and modes[-1] == "ready"
    assert "capturing" in modes and "processing" in modes
    assert modes.index("capturing") < modes.index("processing")
    by_mode = {m: (p, state) for m, p, state in seen}
    assert by_mode["capturing"] == (
        {"ready": "off", "busy": "on", "error": "off"},
        {"ready": False, "busy": True, "error": False},
    )
    assert by_mode["processing"][0] == {"ready": "off", "busy": (0.25, 0.25), "error": "off"}
    assert by_mode["ready"][1] == {"ready": True, "busy": False, "error": False}

    # the busy LED really blinked: completed 'on' periods of about 0.25 s in the pin's history
    blinks = [t for t in on_periods_since(b.pin(23)) if 0.15 < t < 0.4]
    assert len(blinks) >= 2, b.pin(23).states
    assert not b.pin(23).state and b.pin(22).state and not b.pin(24).state
    assert all(not s.state for s in b.pin(24).states)  # the error LED never came on
    assert board.stats["accepted"] == 1


def test_leds_started_after_the_agent_show_its_current_mode(booth: BoothMaker) -> None:
    # the runtime may start the LEDs after the agent: the "ready" event is already gone, start() shows agent.mode
    b = booth([CAPTURE])
    b.wait_ready()
    assert b.agent.mode == "ready"
    leds = b.led_service().leds
    assert leds is not None
    assert leds.mode == "ready" and lit(leds) == {"ready": True, "busy": False, "error": False}

    b.buttons()
    tap(b.pin(17))
    b.wait_done(b.rec.wait(lambda e: e.type == "job.captured").data["job_id"])
    wait_until(
        lambda: leds.mode == "ready" and b.pin(23).states[-1].state is False and len(b.pin(23).states) > 1,
        what="back to ready after the job",
    )
    assert lit(leds) == {"ready": True, "busy": False, "error": False}


def test_leds_show_error_after_a_failed_job(booth: BoothMaker) -> None:
    holder: dict[str, Any] = {}
    b = booth(
        [{"pin": 27, "action": "capture", "profile": "broken"}, CAPTURE],
        before_start=lambda bo: holder.update(following=follow_leds(bo)),
    )
    leds, seen = holder["following"]
    b.buttons()

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


def test_led_service_repeated_mode_keeps_blinking_in_phase_and_unknown_modes_change_nothing(
    booth: BoothMaker,
) -> None:
    b = booth([])
    b.wait_ready()  # the fake modes below must not race the agent's own first announcement
    svc = b.led_service()
    leds = svc.leds
    assert leds is not None
    bus = b.agent.events
    publish_and_wait(bus, "processing")
    thread = leds.leds["busy"]._blink_thread
    publish_and_wait(bus, "processing", detail="again")
    assert leds.leds["busy"]._blink_thread is thread
    publish_and_wait(bus, "warp-speed")
    assert leds.mode == "processing" and leds.patterns()["busy"] == (0.25, 0.25)
    publish_and_wait(bus, "ready")
    assert lit(leds) == {"ready": True, "busy": False, "error": False}

    svc.stop()
    svc.stop()
    assert not svc.alive and leds.leds == {}
    publish_and_wait(bus, "error")  # stopped: no longer following the bus
    assert leds.mode == "ready"
    LED(23, pin_factory=b.factory).close()  # the pins were released


def test_led_service_without_leds_needs_no_gpio(booth: BoothMaker) -> None:
    b = booth([], indicators={})
    b.wait_ready()
    svc = LedService(b.agent)  # no pin factory: none is even looked for
    svc.start()
    b.services.append(svc)
    assert svc.alive and svc.leds is not None and svc.leds.leds == {} and svc.leds.mode == "ready"
    publish_and_wait(b.agent.events, "processing")
    assert svc.leds.mode == "processing"


# ---------------------------------------------------------------------------------------------- the table

NO_ERROR_LED = {"ready_led": 22, "busy_led": 23}

# (mode, LEDs configured) -> what each present LED shows
TABLE = [
    ("starting", ALL_LEDS, {"ready": "off", "busy": "on", "error": "off"}),
    ("ready", ALL_LEDS, {"ready": "on", "busy": "off", "error": "off"}),
    ("capturing", ALL_LEDS, {"ready": "off", "busy": "on", "error": "off"}),
    ("processing", ALL_LEDS, {"ready": "off", "busy": (0.25, 0.25), "error": "off"}),
    ("offline", ALL_LEDS, {"ready": (1.0, 1.0), "busy": "off", "error": "off"}),
    ("error", ALL_LEDS, {"ready": "off", "busy": "off", "error": "on"}),
    ("disk_full", ALL_LEDS, {"ready": "off", "busy": "off", "error": (0.5, 0.5)}),
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


def pins_of(indicators: dict[str, int]) -> LedPins:
    return LedPins(**{k.removesuffix("_led"): v for k, v in indicators.items()})


@pytest.mark.parametrize("mode,pins,want", TABLE, ids=[f"{m}-{'+'.join(p)}" for m, p, _ in TABLE])
def test_led_table(mode: str, pins: dict[str, int], want: dict[str, Any]) -> None:
    factory = MockFactory()
    leds = IndicatorLeds(pins_of(pins), pin_factory=factory)
    leds.start()
    try:
        assert set(leds.leds) == set(want)  # unconfigured LEDs are simply absent
        assert all(isinstance(led, LED) for led in leds.leds.values())
        leds.show("ready")  # from a known state, so every change is visible
        leds.show(mode)
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
                wait_until(
                    lambda pin=pins_[role], since=mark[role], on_s=on_s: any(
                        0.7 * on_s < t < on_s + 0.2 for t in on_periods_since(pin, since)
                    ),
                    timeout=on_s + 1.0,
                    interval=0.005,
                    what=f"{role} LED blinking {pattern} in {mode}",
                )
        for role, pattern in want.items():
            if pattern in ("on", "off"):  # steady: no change since the switch
                assert len(pins_[role].states) == mark[role], f"{role} LED must be steady in {mode}"
    finally:
        leds.close()


def test_leds_start_with_a_mode_and_close_releases_them() -> None:
    factory = MockFactory()
    leds = IndicatorLeds(pins_of(ALL_LEDS), pin_factory=factory)
    leds.start(mode="ready")
    assert lit(leds) == {"ready": True, "busy": False, "error": False}
    leds.close()
    leds.close()
    leds.show("error")  # closed: a late mode changes nothing
    assert leds.mode == "ready" and leds.leds == {}
    for pin in PINS.values():
        LED(pin, pin_factory=factory).close()


def test_no_leds_configured_needs_no_gpio() -> None:
    leds = IndicatorLeds(LedPins())  # no pin factory is even looked for
    leds.start()
    leds.show("ready")
    assert leds.mode == "ready" and leds.leds == {}
    leds.close()


def test_led_pins_by_role() -> None:
    assert LedPins(error=24, ready=22).by_role() == {"ready": 22, "error": 24}
    assert IndicatorLeds(LedPins(busy=23)).pins == {"busy": 23}
