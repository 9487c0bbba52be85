"""A flood of remote captures on a real broker: bounded jobs, every command answered, a guest served at once."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.commands import Command
from agent.config import load_config
from agent.runtime import Runtime
from tests.support.configs import base_config, merge, write_config
from tests.support.mosquitto import Mosquitto

FLOOD = 10_000


@pytest.fixture
def broker(tmp_path: Path):
    b = Mosquitto(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def test_ten_thousand_mqtt_captures_make_few_jobs_and_a_guest_is_answered_at_once(
    tmp_path: Path, sim, broker: Mosquitto
) -> None:
    raw = merge(
        base_config(tmp_path, sim.url),
        {
            "mqtt": {"enabled": True, "host": "127.0.0.1", "port": broker.port, "topic_prefix": "flood"},
            "queue": {"remote_rate_per_min": 30},  # the default: a burst of 5, then one every 2 s
        },
    )
    rt = Runtime(load_config(write_config(tmp_path / "config.toml", raw)), gpio=False)
    rt.start()
    responses: dict[str, int] = {}
    done = threading.Event()
    lock = threading.Lock()

    def on_message(_c, _u, m) -> None:
        body = json.loads(m.payload)
        with lock:
            key = body["status"] if body["status"] == "ok" else body["error"]["code"]
            responses[key] = responses.get(key, 0) + 1
            if sum(responses.values()) >= FLOOD:
                done.set()

    sender = paho.Client(CallbackAPIVersion.VERSION2, client_id="flooder", protocol=paho.MQTTv5)
    sender.on_message = on_message
    sender.connect("127.0.0.1", broker.port)
    sender.subscribe("flood/test-booth/response/capture", qos=1)
    sender.loop_start()
    try:
        assert rt.agent.mqtt.wait_connected(10)
        B = "flood/test-booth"
        t0 = time.monotonic()
        for i in range(FLOOD):
            sender.publish(f"{B}/cmd/capture", json.dumps({"request_id": f"f-{i}"}), qos=1)
        # a guest presses the button in the middle of the flood
        g0 = time.monotonic()
        res = rt.agent.request(Command("capture", "button")).result(timeout=10)
        guest_answered = time.monotonic() - g0
        guest = rt.agent.wait_for(res["job_id"], timeout=30)
        guest_done = time.monotonic() - g0
        assert done.wait(120), f"only {sum(responses.values())} of {FLOOD} commands answered: {responses}"
        flood_s = time.monotonic() - t0
        jobs = sum(rt.agent.store.counts().values())
        print(
            f"\n{FLOOD} MQTT captures in {flood_s:.1f} s: {responses}; {jobs} jobs; guest press answered in "
            f"{guest_answered:.2f} s, its result in {guest_done:.2f} s"
        )
        assert guest.state.value == "done"
        assert guest_answered < 2.0
        assert responses.get("ok", 0) <= 5 + int(flood_s / 2) + 1  # the burst, then one every 2 s
        assert jobs == responses.get("ok", 0) + 1  # every accepted command is one job (plus the guest's)
        assert set(responses) <= {"ok", "rate_limited", "busy"}
    finally:
        sender.loop_stop()
        sender.disconnect()
        rt.stop()
