"""Indicator LEDs: the booth's state at a glance, for guests and for the technician across the room.

``IndicatorLeds`` shows a booth mode (``show(mode)``) on up to three LEDs (``LedPins``: ready / busy / error, BCM
pins; a LED that is not given is simply absent). Like a gpiozero ``LED`` it knows nothing of the application:
``agent/devices.py`` feeds it the agent's ``agent.mode`` events.

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

``show()`` only changes LED states (gpiozero ``on``/``off``/``blink``, whose blink runs on gpiozero's own thread),
so it is safe to call from an event callback, and a repeated mode does not restart a blink, so a burst of events
never makes the LEDs flicker. Without GPIO ``start()`` raises ``GpioUnavailable``; the daemon logs it and carries
on without LEDs.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from hardware.gpio import INSTALL_HINT, GpioUnavailable, describe_pin_factory, resolve_pin_factory

log = logging.getLogger(__name__)

Pattern = str | tuple[float, float]  # "on", "off", or a blink (on_s, off_s)
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


@dataclass(frozen=True)
class LedPins:
    """BCM pin of each indicator LED; None: that LED is not fitted."""

    ready: int | None = None
    busy: int | None = None
    error: int | None = None

    def by_role(self) -> dict[str, int]:
        """The fitted LEDs: role -> BCM pin, in ``ROLES`` order."""
        return {r: p for r in ROLES if (p := getattr(self, r)) is not None}


class IndicatorLeds:
    """Ready / busy / error LEDs showing a booth mode."""

    def __init__(self, pins: LedPins, pin_factory: Any = None) -> None:
        self._pins = pins
        self._pin_factory = pin_factory
        self._lock = threading.Lock()
        self._leds: dict[str, Any] = {}  # role -> gpiozero.LED
        self._patterns: dict[str, Pattern] = {}
        self._started = False
        self.mode: str | None = None  # the last mode shown

    @property
    def pins(self) -> dict[str, int]:
        """The configured LEDs: role -> BCM pin."""
        return self._pins.by_role()

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
        """Create the LEDs (all off) and show `mode` if given. Raises ``GpioUnavailable`` and then holds no pin.

        Without any LED configured no pin factory is even looked for: a booth without LEDs needs no GPIO.
        """
        if self._started:
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
            log.info(
                "indicator LEDs on %s: %s",
                describe_pin_factory(factory),
                ", ".join(f"{r} {p}" for r, p in pins.items()),
            )
        else:
            leds = {}
        with self._lock:
            self._leds = leds
            self._patterns = {role: OFF for role in leds}
            self._started = True
        if mode is not None:
            self.show(mode)

    def close(self) -> None:
        """Turn the LEDs off and release their pins; idempotent. ``show()`` after this changes nothing."""
        with self._lock:
            self._started = False
            leds, self._leds = self._leds, {}
            self._patterns = {}
        for role, led in leds.items():
            try:
                led.close()  # stops a blink thread and releases the pin
            except Exception:  # closing must never stop the daemon's shutdown
                log.exception("closing the %s LED failed", role)

    def __enter__(self) -> IndicatorLeds:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ state

    def show(self, mode: str | None) -> None:
        """Set the LEDs for `mode` (see the table above); an unknown mode leaves them as they are."""
        if mode not in MODE_PATTERNS:
            log.debug("indicator LEDs: no pattern for mode %r", mode)
            return
        with self._lock:
            if not self._started:
                return  # closed (or not started): a late event must not light a released pin
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
