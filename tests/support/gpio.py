"""The GPIO tests' booth: a real Agent on the simulator, its ButtonService / LedService on gpiozero MockFactory
pins (the only fake: GPIO pins cannot exist here), an event recorder, and helpers that press buttons and read
LED pin histories."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin

from agent.config import load_config
from agent.core import Agent
from agent.devices import ButtonService, LedService
from agent.events import Event, EventBus
from hardware.gpio import ButtonBoard
from hardware.indicators import IndicatorLeds

# How long to keep watching for a second job after the first is done. Presses reach the agent synchronously on
# the pin edge and captures run one at a time, so a wrongly made second job is captured right behind the first,
# long before the first is done; this margin only covers event delivery.
SETTLE_S = 0.2
CAPTURE = {"pin": 17, "action": "capture", "profile": "cartoon"}
ALL_LEDS = {"ready_led": 22, "busy_led": 23, "error_led": 24}
PROFILES = [
    {"name": "cartoon", "platform": "easy", "endpoint": "images.edits", "model": "cartoon", "prompt": "x"},
    {"name": "sketch", "platform": "easy", "endpoint": "images.edits", "model": "cartoon", "prompt": "y"},
    # the simulator fails any task whose prompt contains FAIL
    {"name": "broken", "platform": "easy", "endpoint": "images.edits", "model": "cartoon", "prompt": "FAIL"},
]


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
        for seen in self.events:
            if pred(seen):
                return seen
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            ev = self._pull(min(left, 0.2))
            if ev is not None and pred(ev):
                return ev
        raise AssertionError(f"no {what} within {timeout}s; saw {[e.type for e in self.events]}")

    def settle(self, seconds: float) -> None:
        """Keep recording for `seconds`: long enough for a wrongly made second job to show up."""
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
        return [
            e.type[4:]
            for e in self.events
            if e.type.startswith("job.") and e.type != "job.progress" and e.data.get("job_id") == job_id
        ]


class Booth:
    """A real Agent plus the device services of a test, all on one MockFactory unless told otherwise."""

    def __init__(self, agent: Agent, factory: MockFactory) -> None:
        self.agent = agent
        self.factory = factory
        self.rec = Recorder(agent.events)
        self.services: list[ButtonService | LedService] = []

    def buttons(self, factory: MockFactory | None = None) -> ButtonBoard:
        """Start a ButtonService on the agent; its board (stats, sent) is what the tests look at."""
        svc = ButtonService(self.agent, pin_factory=factory or self.factory)
        svc.start()
        self.services.append(svc)
        assert svc.alive and svc.board is not None
        return svc.board

    def led_service(self) -> LedService:
        svc = LedService(self.agent, pin_factory=self.factory)
        svc.start()
        self.services.append(svc)
        assert svc.alive and svc.leds is not None
        return svc

    def pin(self, n: int) -> MockPin:
        return self.factory.pin(n)

    def wait_ready(self) -> None:
        """Until the agent has announced "ready": after this, events a test publishes come after the agent's."""
        self.rec.wait(lambda e: e.type == "agent.mode" and e.data.get("mode") == "ready", 10.0, "agent.mode ready")

    def wait_done(self, job_id: str, timeout: float = 20.0) -> None:
        self.rec.wait(lambda e: e.type == "job.done" and e.data.get("job_id") == job_id, timeout, f"job.done {job_id}")

    def close(self) -> None:
        for svc in reversed(self.services):
            svc.stop()
        self.agent.stop()


class BoothMaker:
    """make(buttons=[...], indicators={...}, latency=S) -> a started Booth on the module's simulator."""

    def __init__(self, sim: Any, config_file: Callable[..., Path]) -> None:
        self._sim = sim
        self._config_file = config_file
        self.made: list[Booth] = []

    def __call__(
        self,
        buttons: list[dict[str, Any]],
        indicators: dict[str, int] | None = None,
        latency: float = 0.1,
        before_start: Callable[[Booth], None] | None = None,
        camera: dict[str, Any] | None = None,
    ) -> Booth:
        assert not self.made, "one booth per test (they would share the state_dir)"
        self._sim.configure(latency=latency)
        path = self._config_file(
            profiles=PROFILES,
            buttons=buttons,
            indicators=ALL_LEDS if indicators is None else indicators,
            camera=camera or {},
        )
        b = Booth(Agent(load_config(path)), MockFactory())
        self.made.append(b)
        if before_start:
            before_start(b)
        b.agent.start()
        return b

    def close(self) -> None:
        for b in self.made:
            b.close()


def tap(pin: MockPin, down_s: float = 0.08) -> None:
    """A clean press of a pull-up button (wired to ground): low, then high again."""
    pin.drive_low()
    time.sleep(down_s)
    pin.drive_high()


def chatter(pin: MockPin, edges: int = 6, gap_s: float = 0.001) -> None:
    """A contact that bounces: `edges` low/high pairs a millisecond apart."""
    for _ in range(edges):
        pin.drive_low()
        time.sleep(gap_s)
        pin.drive_high()
        time.sleep(gap_s)


def resolved(stats: dict[str, int]) -> int:
    """Presses the board has decided on (every press edge ends up in exactly one of these)."""
    return stats["accepted"] + stats["ignored_bounce"] + stats["ignored_busy"]


def lit(leds: IndicatorLeds) -> dict[str, bool]:
    return {role: led.is_lit for role, led in leds.leds.items()}


def on_periods_since(pin: MockPin, mark: int = 1) -> list[float]:
    """Completed 'on' periods of a MockPin that ended at or after history entry `mark` (MockPin.states[i].timestamp
    is the time since the previous change)."""
    st = list(pin.states)
    return [st[i + 1].timestamp for i in range(max(mark - 1, 0), len(st) - 1) if st[i].state and not st[i + 1].state]
