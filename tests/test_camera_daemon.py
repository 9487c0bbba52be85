"""`edge-agent run` with a camera that is not there yet: the daemon starts anyway, says so everywhere (status,
/api/state, MQTT state, mode error, doctor asks the daemon), refuses captures with the reason, then heals by itself
when the camera appears."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt

from tests.support.daemon import DaemonProcess
from tests.support.mjpeg_source import write_video
from tests.support.mosquitto import Mosquitto
from tests.support.proc import run_cli, wait_until


def test_daemon_starts_without_its_camera_reports_it_everywhere_and_heals(config_file, tmp_path: Path) -> None:
    video = tmp_path / "cam" / "live.avi"  # the "camera": not there yet
    broker = Mosquitto(tmp_path / "mq")
    broker.start()
    cfg = config_file(
        camera={"driver": "opencv", "device": str(video), "retry_base_s": 0.2, "retry_max_s": 0.5},
        mqtt={"enabled": True, "port": broker.port, "topic_prefix": "booths"},
    )
    states: queue.Queue[dict] = queue.Queue()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watcher", protocol=mqtt.MQTTv5)
    sub.on_message = lambda c, u, m: states.put(json.loads(m.payload))
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("booths/test-booth/state", qos=1)
    sub.loop_start()

    def mqtt_state(pred, timeout=15.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                s = states.get(timeout=0.2)
            except queue.Empty:
                continue
            if pred(s):
                return s
        raise AssertionError("state not seen on MQTT")

    daemon = DaemonProcess(cfg, tmp_path / "daemon.log")
    started = time.monotonic()
    url = daemon.start()
    try:
        assert time.monotonic() - started < 15  # READY without waiting for the camera
        down = mqtt_state(lambda s: s.get("camera", {}).get("state") == "retrying" and s["mode"] == "error")
        assert f"no such video file: {video}" in down["camera"]["detail"]
        assert down["camera"]["detail"].startswith("retrying in ")
        assert down["detail"].startswith("camera: retrying in ")

        state = httpx.get(f"{url}/api/state", timeout=5).json()
        assert state["mode"] == "error" and state["camera"]["state"] == "retrying"
        status = run_cli("status", "-c", str(cfg))
        assert "camera    retrying (retrying in " in status.stdout and "no such video file" in status.stdout
        doctor = run_cli("doctor", "-c", str(cfg))
        line = next(ln for ln in doctor.stdout.splitlines() if "camera" in ln and "retrying" in ln)
        assert "FAIL" in line and "SKIP" not in doctor.stdout.split("camera", 1)[1].splitlines()[0]
        refused = run_cli("trigger", "-c", str(cfg))
        assert refused.returncode != 0 and "no such video file" in (refused.stdout + refused.stderr)

        video.parent.mkdir()
        write_video(video, frames=10)  # the camera is plugged in
        up = mqtt_state(lambda s: s.get("camera", {}).get("state") == "ok")
        assert up["mode"] == "ready" and up["camera"]["detail"] is None
        assert "camera    ok" in run_cli("status", "-c", str(cfg)).stdout
        doctor = run_cli("doctor", "-c", str(cfg))
        assert any(
            "camera" in ln and "PASS" in ln and "ok in the running daemon" in ln for ln in doctor.stdout.splitlines()
        )
        job = run_cli("trigger", "-c", str(cfg))
        assert job.returncode == 0, job.stderr
        wait_until(lambda: httpx.get(f"{url}/api/state", timeout=5).json()["queue"], what="a job")
        assert daemon.stop() == 0
    finally:
        daemon.kill()
        sub.loop_stop()
        sub.disconnect()
        broker.stop()
    text = (tmp_path / "daemon.log").read_text()
    assert text.count("capture refused") == 1  # the one refused trigger, logged once with its reason
    assert "camera ready: opencv" in text
