"""The agent's side of the GPIO devices: buttons become Commands, ``agent.mode`` events become LED patterns.

``hardware/`` knows nothing of the agent (gpiozero's way: a ``Button`` fires a callback, an ``LED`` shows what it
is told), so the wiring lives here:

* ``ButtonService`` builds ``ButtonSpec`` values from ``[[buttons]]``, hands each press to
  ``agent.request(Command(action, "button", profile=..., choice=...))`` and locks capture buttons out while the agent is
  ``capturing``.
* ``LedService`` builds ``LedPins`` from ``[indicators]``, shows the agent's current mode and then follows the
  ``agent.mode`` events on ``agent.events``.

Both are services (``start()`` / ``stop()`` / ``alive``). Config is read from ``agent.config`` when ``start()``
runs, never kept from construction, so a restarted service picks up a reloaded config. Without GPIO ``start()``
raises ``hardware.gpio.GpioUnavailable`` with a message for the technician; the caller logs it and carries on.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol, cast

from agent.commands import ACTIONS, Action, Command, CommandError
from hardware.gpio import ButtonBoard, ButtonSpec
from hardware.indicators import IndicatorLeds, LedPins

if TYPE_CHECKING:
    from agent.config import ButtonConfig, Config, IndicatorsConfig
    from agent.events import Event, EventBus

log = logging.getLogger(__name__)


class DeviceHost(Protocol):
    """What the device services need of the agent."""

    @property
    def config(self) -> Config: ...

    @property
    def mode(self) -> str: ...

    @property
    def events(self) -> EventBus: ...

    def request(self, cmd: Command) -> Future[dict[str, Any]]: ...


def button_target(profile: str | None, choice: str | None) -> str | None:
    """What a capture button asks for, as the one opaque label ``hardware.gpio`` hands back on a press:
    ``profile`` or ``profile/choice`` (profile names and choice ids never contain a slash)."""
    return profile if choice is None else f"{profile or ''}/{choice}"


def split_target(target: str | None) -> tuple[str | None, str | None]:
    """(profile, choice) of a label made by ``button_target``."""
    if target is None or "/" not in target:
        return target, None
    profile, choice = target.split("/", 1)
    return profile or None, choice


def button_spec(cfg: ButtonConfig) -> ButtonSpec:
    """One ``[[buttons]]`` entry as the plain values ``hardware.gpio`` takes."""
    return ButtonSpec(
        pin=cfg.pin,
        action=cfg.action,
        profile=button_target(cfg.profile, cfg.choice),
        hold_action=cfg.hold_action,
        hold_profile=button_target(cfg.hold_profile, cfg.hold_choice),
        hold_time_s=cfg.hold_time_s,
        bounce_time_s=cfg.bounce_time_s,
        pull_up=cfg.pull_up,
    )


def led_pins(cfg: IndicatorsConfig) -> LedPins:
    """The ``[indicators]`` section as the plain values ``hardware.indicators`` takes."""
    return LedPins(ready=cfg.ready_led, busy=cfg.busy_led, error=cfg.error_led)


class ButtonService:
    """The ``[[buttons]]``: each counted press is one ``Command(source="button")`` for ``agent.request``."""

    def __init__(self, agent: DeviceHost, *, pin_factory: Any = None) -> None:
        self._agent = agent
        self._pin_factory = pin_factory  # None: gpiozero's default (lgpio on a Pi); tests pass a MockFactory
        self._lock = threading.Lock()
        self._board: ButtonBoard | None = None
        self._running = False

    @property
    def board(self) -> ButtonBoard | None:
        """The running board (its ``stats``, ``sent``, ``buttons``); None before ``start()`` or without buttons."""
        return self._board

    @property
    def alive(self) -> bool:
        """True from a successful ``start()`` to ``stop()`` (gpiozero's edge threads cannot be watched)."""
        return self._running

    def start(self) -> None:
        """Claim the configured pins; raises ``GpioUnavailable`` (holding no pin). No buttons: nothing to do."""
        with self._lock:
            if self._running:
                return
            specs = [button_spec(b) for b in self._agent.config.buttons]
            if specs:
                board = ButtonBoard(specs, self._on_press, self._is_busy, pin_factory=self._pin_factory)
                board.start()
                self._board = board
            self._running = True

    def stop(self) -> None:
        with self._lock:
            board, self._board = self._board, None
            self._running = False
        if board is not None:
            board.close()

    def _on_press(self, action: str, profile: str | None) -> Future[dict[str, Any]]:
        # runs on gpiozero's thread: agent.request only queues the command and returns a future
        if action not in ACTIONS:
            raise CommandError("bad_request", f"unknown button action {action!r}")
        profile, choice = split_target(profile)
        cmd = Command(action=cast(Action, action), source="button", profile=profile, choice=choice)
        return self._agent.request(cmd)

    def _is_busy(self) -> bool:
        return self._agent.mode == "capturing"


class LedService:
    """The ``[indicators]`` LEDs, following the agent's mode."""

    def __init__(self, agent: DeviceHost, *, pin_factory: Any = None) -> None:
        self._agent = agent
        self._pin_factory = pin_factory
        self._lock = threading.Lock()
        self._leds: IndicatorLeds | None = None
        self._events: EventBus | None = None  # the bus subscribed to, so stop() leaves the right one

    @property
    def leds(self) -> IndicatorLeds | None:
        """The running LEDs (``mode``, ``patterns()``, ``leds``); None before ``start()``."""
        return self._leds

    @property
    def alive(self) -> bool:
        return self._events is not None

    def start(self) -> None:
        """Claim the LED pins and show the agent's mode; raises ``GpioUnavailable`` (holding no pin).

        Works before and after ``agent.start()``: the current mode is shown at once, then every ``agent.mode``
        event. No LED configured: no GPIO is needed, the service just runs.
        """
        with self._lock:
            if self._events is not None:
                return
            leds = IndicatorLeds(led_pins(self._agent.config.indicators), pin_factory=self._pin_factory)
            leds.start(self._agent.mode)
            self._leds = leds
            events = self._agent.events
            events.on_event(self._on_event)
            self._events = events
            # the mode may have changed between the first look and the subscription; its event went unseen
            leds.show(self._agent.mode)

    def stop(self) -> None:
        with self._lock:
            events, self._events = self._events, None
            leds = self._leds
        if events is not None:
            events.remove_callback(self._on_event)
        if leds is not None:
            leds.close()

    def _on_event(self, ev: Event) -> None:
        # runs on the bus thread: show() only sets LED states, it never blocks
        leds = self._leds
        if ev.type == "agent.mode" and leds is not None:
            leds.show(ev.data.get("mode"))
