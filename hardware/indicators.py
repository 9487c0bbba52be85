"""Indicator LEDs: the booth's state at a glance, for guests and for the technician across the room.

``IndicatorLeds`` follows the agent's ``agent.mode`` events on the event bus and sets up to three LEDs
(``[indicators] ready_led / busy_led / error_led``, BCM pins; a LED that is not configured is simply absent).

| mode         | ready LED              | busy LED              | error LED                  |
|--------------|------------------------|-----------------------|----------------------------|
| starting     | off                    | on (please wait)      | off                        |
| ready        | on                     | off                   | off                        |
| capturing    | off                    | on, steady            | off                        |
| processing   | off                    | blinking 0.25/0.25 s  | off                        |
| offline      | slow blink 1/1 s       | off                   | off                        |
| error        | off (*)                | off                   | on                         |
| disk_full    | off (*)                | off                   | blinking 0.5/0.5 s         |

(*) without an error LED, ``error`` and ``disk_full`` fast-blink the ready LED (0.1/0.1 s) instead, so a fault
is never shown as "ready". Why these: steady means "now, don't move" (the camera is taking the photo), a busy
blink means "working, come back in a moment", a slow ready blink means "I still take photos, they wait for the
network" (offline: jobs are queued durably), and anything on the error LED needs a person.

The bus callback only changes LED states (gpiozero ``on``/``off``/``blink``, whose blink runs on gpiozero's own
thread), and a repeated mode does not restart a blink, so a burst of events never makes the LEDs flicker.
Without GPIO ``start()`` raises ``GpioUnavailable``; the daemon logs it and carries on without LEDs.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Union

from agent.config import IndicatorsConfig
from agent.events import Event, EventBus
from hardware.gpio import INSTALL_HINT, GpioUnavailable, describe_pin_factory, resolve_pin_factory

log = logging.getLogger(__name__)

Pattern = Union[str, tuple[float, float]]  # "on", "off", or a blink (on_s, off_s)
ON, OFF = "on", "off"
BUSY_BLINK = (0.25, 0.25)
OFFLINE_BLINK = (1.0, 1.0)
ALARM_BLINK = (0.5, 0.5)
FAULT_BLINK = (0.1, 0.1)  # the ready LED standing in for a missing error LED

ROLES = ("ready", "busy", "error")

MODE_PATTERNS: dict[str, dict[str, Pattern]] = {
    "starting": {"busy": ON},
    "ready": {"ready": ON},
    "capturing": {"busy": ON},
    "processing": {"busy": BUSY_BLINK},
    "offline": {"ready": OFFLINE_BLINK},
    "error": {"error": ON},
    "disk_full": {"error": ALARM_BLINK},
}
WITHOUT_ERROR_LED: dict[str, dict[str, Pattern]] = {
    "error": {"ready": FAULT_BLINK},
    "disk_full": {"ready": FAULT_BLINK},
}


class IndicatorLeds:
    """Ready / busy / error LEDs following ``agent.mode`` events."""

    def __init__(self, cfg: IndicatorsConfig, events: EventBus, pin_factory: Any = None) -> None:
        self._cfg = cfg
        self._events = events
        self._pin_factory = pin_factory
        self._lock = threading.Lock()
        self._leds: dict[str, Any] = {}  # role -> gpiozero.LED
        self._patterns: dict[str, Pattern] = {}
        self._subscribed = False
        self.mode: str | None = None  # the last mode shown

    @property
    def pins(self) -> dict[str, int]:
        """The configured LEDs: role -> BCM pin."""
        return {r: p for r in ROLES if (p := getattr(self._cfg, f"{r}_led")) is not None}

    @property
    def leds(self) -> dict[str, Any]:
        """The gpiozero ``LED`` per role (only the configured ones; empty before ``start()``)."""
        return dict(self._leds)

    def patterns(self) -> dict[str, Pattern]:
        """What each present LED shows now: ``"on"``, ``"off"`` or ``(on_s, off_s)`` when blinking."""
        with self._lock:
            return dict(self._patterns)

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self, mode: str | None = None) -> None:
        """Create the LEDs and follow the bus. Raises ``GpioUnavailable``.

        Pass the agent's current mode (``leds.start(mode=agent.mode)``) when the agent is already running:
        its last ``agent.mode`` event was published before this subscription and would otherwise be missed.
        """
        if self._subscribed:
            return
        pins = self.pins
        if pins:
            from gpiozero import LED

            factory = resolve_pin_factory(self._pin_factory, "indicator LEDs are disabled")
            leds: dict[str, Any] = {}
            for role, pin in pins.items():
                try:
                    leds[role] = LED(pin, initial_value=False, pin_factory=factory)
                except Exception as e:  # PinInvalidPin, GPIOPinInUse, a driver refusing the pin ...
                    for led in leds.values():
                        led.close()
                    raise GpioUnavailable(
                        f"GPIO pin {pin} cannot be used for the {role} LED: {e}; {INSTALL_HINT}; "
                        "indicator LEDs are disabled"
                    ) from e
            with self._lock:
                self._leds = leds
                self._patterns = {role: OFF for role in leds}
            log.info("indicator LEDs on %s: %s", describe_pin_factory(factory),
                     ", ".join(f"{r} {p}" for r, p in pins.items()))
        self._events.on_event(self._on_event)
        self._subscribed = True
        if mode is not None:
            self._apply(mode, initial=True)

    def close(self) -> None:
        if self._subscribed:
            self._events.remove_callback(self._on_event)
            self._subscribed = False
        with self._lock:
            leds, self._leds = self._leds, {}
            self._patterns = {}
        for role, led in leds.items():
            try:
                led.close()  # stops a blink thread and releases the pin
            except Exception:  # closing must never stop the daemon's shutdown
                log.exception("closing the %s LED failed", role)

    def __enter__(self) -> "IndicatorLeds":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ state

    def _on_event(self, ev: Event) -> None:
        if ev.type == "agent.mode":
            self.show(ev.data.get("mode"))

    def show(self, mode: str | None) -> None:
        """Set the LEDs for `mode` (see the table above); an unknown mode leaves them as they are."""
        self._apply(mode)

    def _apply(self, mode: str | None, initial: bool = False) -> None:
        if mode not in MODE_PATTERNS:
            log.debug("indicator LEDs: no pattern for mode %r", mode)
            return
        with self._lock:
            if initial and self.mode is not None:
                return  # an agent.mode event got here first: it is newer than the mode start() was given
            wanted = dict(MODE_PATTERNS[mode])
            if "error" not in self._leds and mode in WITHOUT_ERROR_LED:
                wanted = dict(WITHOUT_ERROR_LED[mode])
            for role, led in self._leds.items():
                pattern = wanted.get(role, OFF)
                if self._patterns.get(role) == pattern:
                    continue  # keep a running blink in phase
                self._patterns[role] = pattern
                if pattern == ON:
                    led.on()
                elif pattern == OFF:
                    led.off()
                else:
                    led.blink(on_time=pattern[0], off_time=pattern[1])
            self.mode = mode  # last: whoever sees the mode sees the LEDs already set for it
