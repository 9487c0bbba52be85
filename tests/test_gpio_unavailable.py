"""Where there is no GPIO (not a Pi, no lgpio, no permission, a pin taken): ``GpioUnavailable`` with a message a
technician can act on, from the hardware classes and from the agent's device services, and no pin held."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from gpiozero import LED, Button
from gpiozero.pins.mock import MockFactory

from hardware.gpio import ButtonBoard, ButtonSpec, GpioUnavailable
from hardware.indicators import IndicatorLeds, LedPins
from tests.support.configs import REPO
from tests.support.gpio import CAPTURE

NO_GPIO_SCRIPT = r"""
import json, sys
from agent.config import load_config
from agent.core import Agent
from agent.devices import ButtonService, LedService
from hardware.gpio import ButtonBoard, ButtonSpec, GpioUnavailable
from hardware.indicators import IndicatorLeds, LedPins

out = {"check": list(ButtonBoard.check())}
try:
    ButtonBoard([ButtonSpec(pin=17)], on_press=lambda a, p: None, is_busy=lambda: False).start()
except GpioUnavailable as e:
    out["buttons"] = str(e)
try:
    IndicatorLeds(LedPins(ready=22)).start()
except GpioUnavailable as e:
    out["leds"] = str(e)
agent = Agent(load_config(sys.argv[1]))
for name, svc in (("button_service", ButtonService(agent)), ("led_service", LedService(agent))):
    try:
        svc.start()
    except GpioUnavailable as e:
        out[name] = str(e)
    out[name + "_alive"] = svc.alive
agent.stop()
print(json.dumps(out))
"""


def test_no_pin_factory_raises_gpio_unavailable_with_a_clear_message(config_file: Any) -> None:
    cfg = config_file(buttons=[CAPTURE], indicators={"ready_led": 22})
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "nonexistent", "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, "-c", NO_GPIO_SCRIPT, str(cfg)], env=env, capture_output=True, text=True, timeout=30, cwd=REPO
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    ok, msg = out["check"]
    assert ok is False
    for text in (msg, out["buttons"], out["button_service"]):
        assert text.startswith("no GPIO pin factory available: ")
        assert "'nonexistent'" in text
        assert "on a Raspberry Pi install python3-lgpio / run as a user in the gpio group" in text
        assert text.endswith("buttons are disabled")
    for text in (out["leds"], out["led_service"]):
        assert text.startswith("no GPIO pin factory available: ")
        assert text.endswith("indicator LEDs are disabled")
    assert out["button_service_alive"] is False and out["led_service_alive"] is False


def test_check_with_a_working_pin_factory() -> None:
    ok, msg = ButtonBoard.check(MockFactory())
    assert ok is True and "MockFactory" in msg


def test_a_pin_that_cannot_be_used_raises_gpio_unavailable_and_holds_no_pin() -> None:
    factory = MockFactory()
    taken = Button(17, pin_factory=factory)  # something else already owns pin 17
    never = (lambda a, p: None), (lambda: False)
    try:
        board = ButtonBoard([ButtonSpec(pin=27), ButtonSpec(pin=17)], *never, pin_factory=factory)
        with pytest.raises(GpioUnavailable, match=r"GPIO pin 17 cannot be used as a button: .*buttons are disabled"):
            board.start()
        Button(27, pin_factory=factory).close()  # pin 27, created before the failure, was given back

        with pytest.raises(GpioUnavailable, match=r"GPIO pin 99 cannot be used as a button"):
            ButtonBoard([ButtonSpec(pin=99)], *never, pin_factory=factory).start()

        leds = IndicatorLeds(LedPins(ready=22, busy=17), pin_factory=factory)
        with pytest.raises(GpioUnavailable, match=r"GPIO pin 17 cannot be used for the busy LED: .*LEDs are disabled"):
            leds.start()
        LED(22, pin_factory=factory).close()
    finally:
        taken.close()
