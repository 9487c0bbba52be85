"""`edge-agent run` with everything the config asks for: MQTT on a real broker, buttons where no GPIO exists."""

from __future__ import annotations

import json
import queue
from pathlib import Path

import paho.mqtt.client as mqtt

from tests.support.configs import TEST_KEY
from tests.support.daemon import DaemonProcess
from tests.support.mosquitto import Mosquitto
from tests.support.proc import run_cli


def test_daemon_with_mqtt_and_missing_gpio(config_file, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mq")
    broker.start()
    cfg = config_file(
        mqtt={"enabled": True, "port": broker.port, "topic_prefix": "booths"},
        buttons=[{"pin": 17, "action": "capture", "profile": "cartoon"}],
        indicators={"ready_led": 22, "busy_led": 23},
    )
    B = "booths/test-booth"
    got: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watcher", protocol=mqtt.MQTTv5)
    sub.on_message = lambda c, u, m: got.put(m)
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe(f"{B}/#", qos=1)
    sub.loop_start()

    def wait_msg(pred, timeout=20.0):
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                m = got.get(timeout=0.2)
            except queue.Empty:
                continue
            if pred(m):
                return m
        raise AssertionError("message not seen")

    daemon = DaemonProcess(cfg, tmp_path / "daemon.log", env={"GPIOZERO_PIN_FACTORY": "nonexistent"})
    daemon.start()
    try:
        wait_msg(lambda m: m.topic == f"{B}/status" and m.payload == b"online")
        state = wait_msg(lambda m: m.topic == f"{B}/state")
        assert json.loads(state.payload)["mode"] in ("ready", "starting")
        sub.publish(f"{B}/cmd/capture", json.dumps({"request_id": "d-1", "profile": "tryon"}), qos=1)
        resp = json.loads(wait_msg(lambda m: m.topic == f"{B}/response/capture").payload)
        assert resp["status"] == "ok" and resp["request_id"] == "d-1"
        result = json.loads(wait_msg(lambda m: m.topic == f"{B}/result").payload)
        assert result["job_id"] == resp["data"]["job_id"] and Path(result["outputs"][0]["path"]).is_file()
        r = run_cli("status", "-c", str(cfg))
        assert "mqtt      connected" in r.stdout and "daemon    running" in r.stdout
        assert daemon.stop() == 0
        wait_msg(lambda m: m.topic == f"{B}/status" and m.payload == b"offline")
    finally:
        daemon.kill()
        sub.loop_stop()
        sub.disconnect()
        broker.stop()
    text = (tmp_path / "daemon.log").read_text()
    assert "buttons are disabled" in text  # said clearly, and the daemon carried on
    assert TEST_KEY not in text
