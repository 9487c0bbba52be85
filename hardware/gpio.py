"""Big buttons on GPIO pins: one press is one photo.

``ButtonBoard`` turns a list of ``ButtonSpec`` (plain values: pin, action, profile, hold ...) into gpiozero
``Button`` objects. Like a gpiozero ``Button`` it knows nothing of the application: a press that counts calls
``on_press(action, profile)``, which must not block and returns a ``Future`` (its result is the answer, its
exception a refusal) or ``None`` (nothing to wait for). ``agent/devices.py`` wires it to the agent. The callbacks
run on gpiozero's thread (the pin driver's edge thread, or the hold thread), so they only decide whether a press
counts, hand it over and return.

Why the rules below exist (a guest at a party presses hard, twice, and keeps pressing):

* **Bounce.** A mechanical contact chatters for a few milliseconds when it closes and opens, so one press looks
  like several edges. gpiozero's ``bounce_time`` (from ``bounce_time_s``) filters in the pin driver where it
  can (lgpio does; ``MockPin`` does not), and the board filters again in software: a press edge that comes
  within ``bounce_time_s`` of the last release is release chatter, and a press accepted within
  ``min_gap_s`` (0.3 s) of the previous accepted press of the same pin is a double press. Both are counted as
  ``ignored_bounce``.
* **Busy lock-out.** One press is one photo, even when the guest presses again because nothing seems to happen.
  A ``capture`` press is ignored (``ignored_busy``) while this board's previous capture request has not been
  answered yet (its future is pending) or while ``is_busy()`` says so (the agent is capturing). Cancel / retry / print
  presses are never locked out: cancel must work exactly while something is busy.
* **Release vs hold.** A button with a ``hold_action`` cannot know on the press edge whether this will be a
  short press or a hold, so its press action fires on RELEASE (when the hold did not fire), and its hold action
  fires once when gpiozero reports the hold (``hold_time_s``, no repeat). A press shorter than ``bounce_time_s``
  is a glitch, not a press. A button without a hold action fires on the press edge (the fastest response) and a
  long hold never makes a second job.

Every press is counted in ``stats`` (``pressed``, ``accepted``, ``ignored_bounce``, ``ignored_busy``, plus
``held`` and ``refused`` for requests that were turned down); ignored presses are logged, and ``sent`` keeps
the last presses handed over as ``Press(pin, action, profile)``.
Without GPIO (no pin factory, a pin that cannot be used) ``start()`` raises ``GpioUnavailable`` with a message
a technician can act on; the daemon logs it and carries on without buttons.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

MIN_PRESS_GAP_S = 0.3  # two accepted presses of one pin closer than this are one press (double press, chatter)
CAPTURE_LOCKOUT_MAX_S = 120.0  # a capture request unanswered this long no longer locks the button (core bug guard)

INSTALL_HINT = "on a Raspberry Pi install python3-lgpio / run as a user in the gpio group"


class GpioUnavailable(RuntimeError):
    """No usable GPIO here: no pin factory (not a Pi, no lgpio, no permission) or a pin that cannot be used."""


def resolve_pin_factory(pin_factory: Any = None, disabled: str = "buttons are disabled") -> Any:
    """The pin factory to use: the given one, else gpiozero's default (``GPIOZERO_PIN_FACTORY`` or lgpio ...).

    Resolving it up front turns "no GPIO here" into one clear ``GpioUnavailable`` instead of an error per pin,
    and keeps the reasons gpiozero tried and gave up on (its fallback warnings) in the message.
    """
    if pin_factory is not None:
        return pin_factory
    from gpiozero import Device
    from gpiozero.exc import PinFactoryFallback

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            Device.ensure_pin_factory()
            error: Exception | None = None
        except Exception as e:  # BadPinFactory, or a driver's own error when one is forced by name
            error = e
    tried = [str(w.message) for w in caught if issubclass(w.category, PinFactoryFallback)]
    if error is not None or Device.pin_factory is None:
        detail = str(error) if error is not None else "gpiozero returned no pin factory"
        if tried:
            detail += " (" + "; ".join(tried) + ")"
        raise GpioUnavailable(f"no GPIO pin factory available: {detail}; {INSTALL_HINT}; {disabled}") from error
    for w in caught:
        log.debug("gpiozero: %s", w.message)
    return Device.pin_factory


def describe_pin_factory(factory: Any) -> str:
    name = type(factory).__name__
    try:
        model = factory.board_info.model
    except Exception:  # board detection is informative only
        return name
    return f"{name} (Raspberry Pi {model})"


@dataclass(frozen=True)
class ButtonSpec:
    """One button, in plain values (BCM pin numbering). ``profile`` / ``hold_profile`` only mean something to a
    ``capture``; ``hold_action`` None: holding the button means nothing more than pressing it."""

    pin: int
    action: str = "capture"
    profile: str | None = None
    hold_action: str | None = None
    hold_profile: str | None = None
    hold_time_s: float = 2.0
    bounce_time_s: float = 0.05
    pull_up: bool = True  # a button wired between the pin and ground


class Press(NamedTuple):
    """A press handed to ``on_press`` (a tuple, so ``(17, "capture", "cartoon")`` compares equal)."""

    pin: int
    action: str
    profile: str | None


OnPress = Callable[[str, str | None], "Future[Any] | None"]


@dataclass
class _PinState:
    """What one button's callbacks remember between edges (guarded by the board's lock)."""

    spec: ButtonSpec
    button: Any = None  # gpiozero.Button
    down_at: float | None = None  # monotonic time of the press edge while the button is down
    released_at: float = float("-inf")
    accepted_at: float = float("-inf")
    hold_fired: bool = False
    stats: dict[str, int] = field(default_factory=lambda: _new_stats())


def _new_stats() -> dict[str, int]:
    return {"pressed": 0, "accepted": 0, "ignored_bounce": 0, "ignored_busy": 0, "held": 0, "refused": 0}


class ButtonBoard:
    """The buttons of ``specs``; each press becomes at most one ``on_press(action, profile)`` call."""

    def __init__(
        self,
        specs: list[ButtonSpec],
        on_press: OnPress,
        is_busy: Callable[[], bool],
        pin_factory: Any = None,
        *,
        min_gap_s: float = MIN_PRESS_GAP_S,
    ) -> None:
        self._specs = list(specs)
        self._on_press_cb = on_press
        self._is_busy = is_busy
        self._pin_factory = pin_factory
        self.min_gap_s = min_gap_s
        self._lock = threading.Lock()
        self._pins: dict[int, _PinState] = {}
        self._capture_inflight: tuple[Press, float] | None = None  # this board's unanswered capture, since
        self.stats: dict[str, int] = _new_stats()  # totals over all pins; per pin: stats_for(pin)
        self.sent: deque[Press] = deque(maxlen=50)  # presses handed to on_press, newest last

    # ------------------------------------------------------------------------------------------ lifecycle

    @staticmethod
    def check(pin_factory: Any = None) -> tuple[bool, str]:
        """For ``doctor``: can buttons work here? ``(True, "LGPIOFactory (Raspberry Pi 4B)")`` or ``(False, why)``."""
        try:
            factory = resolve_pin_factory(pin_factory)
        except GpioUnavailable as e:
            return False, str(e)
        return True, f"GPIO via {describe_pin_factory(factory)}"

    def start(self) -> None:
        """Create the gpiozero buttons; raises ``GpioUnavailable`` (and holds no pin) when that is impossible."""
        if self._pins:
            return
        from gpiozero import Button

        factory = resolve_pin_factory(self._pin_factory)
        pins: dict[int, _PinState] = {}
        try:
            for spec in self._specs:
                st = _PinState(spec)
                try:
                    st.button = Button(
                        spec.pin,
                        pull_up=spec.pull_up,
                        bounce_time=spec.bounce_time_s or None,
                        hold_time=spec.hold_time_s,
                        hold_repeat=False,
                        pin_factory=factory,
                    )
                except Exception as e:  # PinInvalidPin, GPIOPinInUse, a driver refusing the pin ...
                    raise GpioUnavailable(
                        f"GPIO pin {spec.pin} cannot be used as a button: {e}; {INSTALL_HINT}; buttons are disabled"
                    ) from e
                pins[spec.pin] = st
                st.button.when_pressed = lambda st=st: self._on_press(st)
                st.button.when_released = lambda st=st: self._on_release(st)
                if spec.hold_action is not None:
                    st.button.when_held = lambda st=st: self._on_held(st)
        except GpioUnavailable:
            for st in pins.values():
                st.button.close()
            raise
        with self._lock:
            self._pins = pins
        log.info(
            "buttons ready on %s: %s",
            describe_pin_factory(factory),
            ", ".join(self._describe(c) for c in self._specs) or "none",
        )

    def close(self) -> None:
        with self._lock:
            pins, self._pins = self._pins, {}
        for st in pins.values():
            try:
                st.button.close()
            except Exception:  # closing must never stop the daemon's shutdown
                log.exception("closing button on pin %d failed", st.spec.pin)

    def __enter__(self) -> ButtonBoard:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def buttons(self) -> dict[int, Any]:
        """The gpiozero ``Button`` per BCM pin (empty before ``start()``)."""
        return {pin: st.button for pin, st in self._pins.items()}

    def stats_for(self, pin: int) -> dict[str, int]:
        with self._lock:
            return dict(self._pins[pin].stats)

    @property
    def capture_pending(self) -> bool:
        """True while this board's last capture request has not been answered by the agent."""
        return self._capture_inflight is not None

    # ------------------------------------------------------------------------------------------ callbacks
    # These run on gpiozero's threads: decide under the lock, then hand over the command. Nothing else.

    def _on_press(self, st: _PinState) -> None:
        now = time.monotonic()
        with self._lock:
            self._count(st, "pressed")
            st.down_at = now
            st.hold_fired = False
            if st.spec.hold_action is not None:
                return  # a short press fires on release, a hold on hold
            chatter = now - st.released_at < st.spec.bounce_time_s
            press = self._judge(st, st.spec.action, st.spec.profile, now, chatter, "press")
        self._submit(st, press)

    def _on_release(self, st: _PinState) -> None:
        now = time.monotonic()
        with self._lock:
            down_at, st.down_at = st.down_at, None
            st.released_at = now
            if st.spec.hold_action is None or down_at is None:
                return
            if st.hold_fired:
                st.hold_fired = False  # this press already did its one thing: the hold action
                return
            glitch = now - down_at < st.spec.bounce_time_s
            press = self._judge(st, st.spec.action, st.spec.profile, now, glitch, "press")
        self._submit(st, press)

    def _on_held(self, st: _PinState) -> None:
        now = time.monotonic()
        with self._lock:
            if st.down_at is None or st.hold_fired or st.spec.hold_action is None:
                return
            st.hold_fired = True
            self._count(st, "held")
            press = self._judge(st, st.spec.hold_action, st.spec.hold_profile, now, False, "hold")
        self._submit(st, press)

    def _judge(
        self, st: _PinState, action: str, profile: str | None, now: float, bounce: bool, kind: str
    ) -> Press | None:
        """Called with the lock held: the press to hand over, or None (counted and logged)."""
        pin = st.spec.pin
        if bounce or now - st.accepted_at < self.min_gap_s:
            self._count(st, "ignored_bounce")
            log.debug("button %d: %s ignored (contact bounce / double press)", pin, kind)
            return None
        if action == "capture":
            busy = self._busy_reason(now)
            if busy:
                self._count(st, "ignored_busy")
                log.info("button %d: %s ignored: %s", pin, kind, busy)
                return None
        st.accepted_at = now
        self._count(st, "accepted")
        if action != "capture":
            return Press(st.spec.pin, action, None)  # a profile means nothing to cancel / retry / print
        press = Press(st.spec.pin, "capture", profile)
        self._capture_inflight = (press, now)
        return press

    def _busy_reason(self, now: float) -> str:
        if self._capture_inflight is not None:
            waited = now - self._capture_inflight[1]
            if waited < CAPTURE_LOCKOUT_MAX_S:
                return "the previous capture is still in progress"
            log.warning("a button capture request is unanswered after %.0f s; unlocking the buttons", waited)
            self._capture_inflight = None
        try:
            busy = self._is_busy()
        except Exception:  # a broken busy check must not lock the buttons out for good
            log.exception("buttons: is_busy() failed; treating the booth as free")
            busy = False
        return "the booth is busy (capturing)" if busy else ""

    def _submit(self, st: _PinState, press: Press | None) -> None:
        if press is None:
            return
        self.sent.append(press)
        try:
            fut = self._on_press_cb(press.action, press.profile)
        except Exception as e:  # on_press should never raise; if it does, the button must stay usable
            log.exception("button %d: %s could not be handed over", press.pin, press.action)
            self._answered(st, press, None, e)
            return
        if fut is None:  # nothing to wait for: answered at once
            self._answered(st, press, None, None)
            return

        def done(f: Future[Any]) -> None:
            # a future cancelled at shutdown has no exception() to ask for: it is a refusal all the same
            self._answered(st, press, f, CancelledError() if f.cancelled() else f.exception())

        fut.add_done_callback(done)

    def _answered(self, st: _PinState, press: Press, fut: Future[Any] | None, exc: BaseException | None) -> None:
        """Runs on whichever thread resolved the future: unlock, count a refusal, log."""
        with self._lock:
            if self._capture_inflight is not None and self._capture_inflight[0] is press:
                self._capture_inflight = None
            if exc is not None:
                self._count(st, "refused")
        if exc is not None:
            code = getattr(exc, "code", None)  # the application's refusal code, when it has one
            log.warning("button %d: %s refused: %s%s", press.pin, press.action, exc, f" ({code})" if code else "")
        elif fut is not None:
            log.info("button %d: %s -> %s", press.pin, press.action, fut.result())

    def _count(self, st: _PinState, key: str) -> None:
        st.stats[key] += 1
        self.stats[key] += 1

    @staticmethod
    def _describe(spec: ButtonSpec) -> str:
        text = f"pin {spec.pin} {spec.action}" + (f" ({spec.profile})" if spec.profile else "")
        if spec.hold_action:
            text += f", hold {spec.hold_time_s:g}s {spec.hold_action}" + (
                f" ({spec.hold_profile})" if spec.hold_profile else ""
            )
        return text
