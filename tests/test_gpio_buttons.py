"""Buttons, end to end: gpiozero MockFactory pins -> ButtonBoard -> ButtonService -> a real Agent -> the built-in
simulator over real HTTP -> events; and the board alone with plain callbacks. No GPIO: test_gpio_unavailable.py.

The only fake is the GPIO pins (gpiozero's own MockFactory); everything of the project is real.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockFactory

from agent.devices import ButtonService
from hardware.gpio import ButtonBoard, ButtonSpec
from tests.support.gpio import CAPTURE, SETTLE_S, BoothMaker, chatter, resolved, tap
from tests.support.proc import wait_until

NO_PRESSES = {"pressed": 0, "accepted": 0, "ignored_bounce": 0, "ignored_busy": 0, "held": 0, "refused": 0}


@pytest.fixture
def booth(sim: Any, config_file: Any) -> Iterator[BoothMaker]:
    maker = BoothMaker(sim, config_file)
    yield maker
    maker.close()


# ---------------------------------------------------------------------------------------------- presses and jobs


def test_one_press_makes_exactly_one_job_that_gets_done(booth: BoothMaker) -> None:
    b = booth([CAPTURE])
    board = b.buttons()
    assert set(board.buttons) == {17} and isinstance(board.buttons[17], Button)

    tap(b.pin(17))
    ev = b.rec.wait(lambda e: e.type == "job.captured", what="job.captured")
    assert ev.data["source"] == "button" and ev.data["profile"] == "cartoon"
    b.wait_done(ev.data["job_id"])
    b.rec.settle(SETTLE_S)

    assert b.rec.job_ids() == {ev.data["job_id"]}
    assert b.rec.states(ev.data["job_id"])[-1] == "done"
    assert board.stats == {**NO_PRESSES, "pressed": 1, "accepted": 1}
    assert list(board.sent) == [(17, "capture", "cartoon")]


def test_contact_bounce_on_press_and_release_makes_one_job(booth: BoothMaker) -> None:
    b = booth([CAPTURE])
    board = b.buttons()
    pin = b.pin(17)

    chatter(pin, edges=5)  # closing: five short contacts, then the finger holds the button down
    pin.drive_low()
    time.sleep(board.min_gap_s + 0.1)  # past the press gap: only the bounce time can tell the opening chatter
    chatter(pin, edges=3)  # opening: it chatters again
    ev = b.rec.wait(lambda e: e.type == "job.captured")
    b.wait_done(ev.data["job_id"])
    b.rec.settle(SETTLE_S)

    assert b.rec.job_ids() == {ev.data["job_id"]}
    assert board.stats["pressed"] == 8  # every closing edge was seen (5 + 1 + 2 in the opening chatter) ...
    assert board.stats["accepted"] == 1  # ... one was a press
    assert board.stats["ignored_bounce"] == 7
    assert board.stats["ignored_busy"] == 0


def test_contact_bounce_on_a_button_with_a_hold_action_makes_one_job(booth: BoothMaker) -> None:
    b = booth([{**CAPTURE, "hold_action": "capture", "hold_profile": "sketch", "hold_time_s": 1.0}])
    board = b.buttons()
    pin = b.pin(17)

    chatter(pin, edges=4)
    pin.drive_low()
    time.sleep(0.15)
    assert board.stats["accepted"] == 0, "closing chatter is not a short press; the button is still down"
    chatter(pin, edges=2)
    assert board.stats["accepted"] == 1
    ev = b.rec.wait(lambda e: e.type == "job.captured")
    b.wait_done(ev.data["job_id"])
    b.rec.settle(SETTLE_S)

    assert b.rec.job_ids() == {ev.data["job_id"]} and ev.data["profile"] == "cartoon"
    assert board.stats["accepted"] == 1 and board.stats["held"] == 0
    assert resolved(board.stats) == board.stats["pressed"] == 6  # 4 + 1 + 1 in the opening chatter


def test_a_double_tap_within_the_press_gap_is_one_press(booth: BoothMaker) -> None:
    # a clean second press 0.1 s after the first (no chatter, nothing busy): the gap rule alone stops it
    b = booth([{"pin": 13, "action": "print"}])
    board = b.buttons()
    pin = b.pin(13)

    tap(pin, down_s=0.05)
    time.sleep(0.05)
    tap(pin, down_s=0.05)
    assert board.stats["accepted"] == 1 and board.stats["ignored_bounce"] == 1
    time.sleep(board.min_gap_s)
    tap(pin, down_s=0.05)  # a deliberate second press later is a press
    assert board.stats["accepted"] == 2
    assert list(board.sent) == [(13, "print", None)] * 2
    wait_until(lambda: board.stats["refused"] == 2, what="both print requests answered")  # nothing to print


HOLD_S = 0.1  # short hold times keep these tests quick; gpiozero times a hold the same way at any length


def test_held_button_with_hold_action_fires_the_hold_action_once_only(booth: BoothMaker) -> None:
    # no bounce filter on this button, so the short press below can be far shorter than the hold time
    b = booth(
        [{**CAPTURE, "hold_action": "capture", "hold_profile": "sketch", "hold_time_s": HOLD_S, "bounce_time_s": 0}]
    )
    board = b.buttons()
    pin = b.pin(17)

    pin.drive_low()
    wait_until(lambda: board.stats["held"] == 1, timeout=5, interval=0.005, what="the hold action")
    time.sleep(4.5 * HOLD_S)  # more than four hold times: gpiozero must not repeat ...
    pin.drive_high()
    assert board.stats["held"] == 1 and board.stats["accepted"] == 1 and board.stats["pressed"] == 1  # ... nor the
    ev = b.rec.wait(lambda e: e.type == "job.captured")  # release add a press
    b.wait_done(ev.data["job_id"])
    b.rec.settle(SETTLE_S)

    assert ev.data["profile"] == "sketch"
    assert b.rec.job_ids() == {ev.data["job_id"]}
    assert b.rec.job_ids("cartoon") == set()
    assert board.stats["held"] == 1 and board.stats["accepted"] == 1 and board.stats["pressed"] == 1

    # a short press on the same button is the press action, and it fires on RELEASE, not on press
    pin.drive_low()
    assert board.stats["pressed"] == 2
    assert board.stats["accepted"] == 1, "a button with a hold action must wait for the release"
    pin.drive_high()
    assert board.stats["accepted"] == 2 and board.stats["held"] == 1
    ev2 = b.rec.wait(lambda e: e.type == "job.captured" and e.data["profile"] == "cartoon")
    b.wait_done(ev2.data["job_id"])
    assert b.rec.job_ids() == {ev.data["job_id"], ev2.data["job_id"]}
    assert [p.profile for p in board.sent] == ["sketch", "cartoon"]


def test_held_button_without_hold_action_makes_one_job(booth: BoothMaker) -> None:
    b = booth([{**CAPTURE, "hold_time_s": HOLD_S}])  # a hold time, but no hold action: holding means nothing
    board = b.buttons()
    pin = b.pin(17)

    pin.drive_low()
    assert board.stats["accepted"] == 1  # fired on the press edge, at once
    wait_until(lambda: board.buttons[17].is_held, timeout=5, interval=0.005, what="gpiozero seeing the hold")
    time.sleep(2 * HOLD_S)  # and then some
    pin.drive_high()
    ev = b.rec.wait(lambda e: e.type == "job.captured")
    b.wait_done(ev.data["job_id"])
    b.rec.settle(SETTLE_S)

    assert b.rec.job_ids() == {ev.data["job_id"]}
    assert board.stats == {**NO_PRESSES, "pressed": 1, "accepted": 1}


def test_press_while_the_previous_capture_is_pending_is_ignored(booth: BoothMaker) -> None:
    # two capture buttons on one board (the booth's front and side): the debounce gap is per pin, so only the
    # busy lock-out can stop the second press
    b = booth([CAPTURE, {"pin": 27, "action": "capture", "profile": "sketch"}])
    board = b.buttons()

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
    b.rec.settle(SETTLE_S)
    assert b.rec.job_ids() == {ev.data["job_id"]}

    tap(b.pin(27))  # once the capture is answered, the other button works again
    ev2 = b.rec.wait(lambda e: e.type == "job.captured" and e.data["job_id"] != ev.data["job_id"])
    assert ev2.data["profile"] == "sketch"
    b.wait_done(ev2.data["job_id"])
    assert board.stats == {**NO_PRESSES, "pressed": 3, "accepted": 2, "ignored_busy": 1}


def test_press_while_the_agent_is_capturing_is_ignored(booth: BoothMaker) -> None:
    # a second button service (think: a remote button box) on its own pins: its own lock is free, the agent's
    # mode is not. A big synthetic frame makes the capture last long enough to press during it.
    b = booth([CAPTURE], camera={"driver": "synthetic", "width": 4096, "height": 3072})
    first = b.buttons()
    other_factory = MockFactory()
    second = b.buttons(factory=other_factory)

    b.pin(17).drive_low()
    wait_until(lambda: b.agent.mode == "capturing", timeout=5, interval=0.002, what="agent capturing")
    other_factory.pin(17).drive_low()
    capturing_at_press = b.agent.mode == "capturing"
    b.pin(17).drive_high()
    other_factory.pin(17).drive_high()
    assert capturing_at_press, "the capture was too quick for this test"
    assert second.stats["ignored_busy"] == 1 and second.stats["accepted"] == 0
    assert first.stats["accepted"] == 1

    ev = b.rec.wait(lambda e: e.type == "job.captured", timeout=30)
    b.rec.settle(SETTLE_S)
    assert b.rec.job_ids() == {ev.data["job_id"]}


def test_cancel_retry_and_print_buttons_send_the_right_commands(booth: BoothMaker) -> None:
    b = booth(
        [
            {"pin": 17, "action": "capture", "profile": "cartoon"},
            {"pin": 27, "action": "capture", "profile": "broken"},
            {"pin": 5, "action": "cancel"},
            {"pin": 6, "action": "retry"},
            {"pin": 13, "action": "print"},
        ],
        latency=0.6,  # slow enough to cancel the first job mid-flight
    )
    board = b.buttons()

    # cancel: the job being processed
    tap(b.pin(17))
    ev = b.rec.wait(lambda e: e.type in ("job.submitting", "job.submitted"))
    job = ev.data["job_id"]
    tap(b.pin(5))
    b.rec.wait(lambda e: e.type == "job.cancelled" and e.data["job_id"] == job, what="job.cancelled")
    assert board.sent[-1] == (5, "cancel", None)

    # retry: the last failed job goes round again (and the simulator fails it again)
    tap(b.pin(27))
    first_fail = b.rec.wait(lambda e: e.type == "job.failed", what="job.failed")
    failed = first_fail.data["job_id"]
    tap(b.pin(6))
    again = b.rec.wait(
        lambda e: e.type == "job.captured" and e.data["job_id"] == failed and e.seq > first_fail.seq,
        what="the failed job captured again by retry",
    )
    b.rec.wait(
        lambda e: e.type == "job.failed" and e.data["job_id"] == failed and e.seq > again.seq,
        what="the retried job failing again",
    )
    assert board.sent[-1] == (6, "retry", None)
    assert b.rec.states(failed).count("captured") == 2

    # print: printing is off in this config, so the agent refuses it; the board counts the refusal
    tap(b.pin(13))
    wait_until(lambda: board.stats["refused"] == 1, what="print refused")
    assert board.sent[-1] == (13, "print", None)
    assert board.stats["accepted"] == 5 and board.stats["ignored_busy"] == 0
    # the cancelled and the failed photo are the only jobs: cancel/retry/print never made one
    assert b.rec.job_ids() == {job, failed}


def test_stop_releases_the_pins_and_is_idempotent(booth: BoothMaker) -> None:
    b = booth([CAPTURE])
    svc = ButtonService(b.agent, pin_factory=b.factory)
    b.services.append(svc)
    svc.start()
    board = svc.board
    assert board is not None and set(board.buttons) == {17}
    svc.stop()
    svc.stop()
    assert not svc.alive and svc.board is None
    assert board.buttons == {}
    board.close()  # the board itself is idempotent too
    Button(17, pin_factory=b.factory).close()  # the pin is free again
    svc.start()  # a stopped service starts again, on the same pins
    assert svc.alive and svc.board is not None and set(svc.board.buttons) == {17}


def test_a_config_without_buttons_needs_no_gpio(booth: BoothMaker) -> None:
    b = booth([])
    svc = ButtonService(b.agent)  # no pin factory: none is even looked for
    svc.start()
    assert svc.alive and svc.board is None
    svc.stop()


# ---------------------------------------------------------------------------------------------- the board alone


def test_board_hands_presses_to_plain_callbacks() -> None:
    # hardware/ knows nothing of the agent: on_press gets plain values and returns a future (or None)
    factory = MockFactory()
    calls: list[tuple[str, str | None]] = []
    pending: list[Future[Any]] = []
    busy = [False]

    def on_press(action: str, profile: str | None) -> Future[Any] | None:
        calls.append((action, profile))
        if action != "capture":
            return None  # nothing to wait for
        fut: Future[Any] = Future()
        pending.append(fut)
        return fut

    # no bounce filter: quick taps here are presses, so only the busy rules decide
    specs = [
        ButtonSpec(pin=17, profile="cartoon", bounce_time_s=0),
        ButtonSpec(pin=27, profile="sketch", bounce_time_s=0),
        ButtonSpec(pin=5, action="cancel", profile="ignored", bounce_time_s=0),
    ]
    with ButtonBoard(specs, on_press, lambda: busy[0], pin_factory=factory) as board:
        tap(factory.pin(17), down_s=0.01)
        assert board.capture_pending and calls == [("capture", "cartoon")]
        tap(factory.pin(27), down_s=0.01)  # the first capture is unanswered: locked out
        assert board.stats_for(27)["ignored_busy"] == 1
        tap(factory.pin(5), down_s=0.01)  # cancel is never locked out; a profile means nothing to it
        assert calls[-1] == ("cancel", None) and board.stats["refused"] == 0
        pending[0].set_exception(RuntimeError("no camera"))  # an exception is a refusal, and unlocks
        assert not board.capture_pending and board.stats["refused"] == 1
        busy[0] = True
        tap(factory.pin(27), down_s=0.01)  # is_busy() locks capture out too
        assert board.stats_for(27)["ignored_busy"] == 2
        busy[0] = False
        tap(factory.pin(27), down_s=0.01)
        pending[1].set_result({"job_id": "x"})
        assert not board.capture_pending and board.stats["refused"] == 1
        assert list(board.sent) == [(17, "capture", "cartoon"), (5, "cancel", None), (27, "capture", "sketch")]
    assert board.buttons == {}
