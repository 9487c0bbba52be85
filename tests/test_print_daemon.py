"""Printing through a real `edge-agent run` daemon, a real CUPS queue (cups-pdf) and a real MQTT broker.

A disabled queue is reported on every surface (API state, `status`, MQTT B/state, `doctor`, `printer status`),
a print made meanwhile is held and comes out once the queue is enabled; the per-event limit refuses the next print
on every surface until an operator resets the count.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.cups import PdfQueue, page_size_pt
from tests.support.daemon import DaemonProcess
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt import Watcher
from tests.support.printing import VIVID, printer_config
from tests.support.proc import run_cli, wait_until

H = {"X-Edge-Agent": "1"}


@pytest.fixture(scope="module")
def queue():
    with PdfQueue("ea-daemon") as q:
        yield q


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory):
    b = Mosquitto(tmp_path_factory.mktemp("broker"))
    yield b
    b.stop()


def _start(config_file, tmp_path: Path, broker: Mosquitto, queue: PdfQueue, **printer: object) -> DaemonProcess:
    mqtt = {"enabled": True, "host": "127.0.0.1", "port": broker.port, "topic_prefix": "eap"}
    cfg = config_file(profiles=[VIVID], printer=printer_config(queue.name, **printer), mqtt=mqtt)
    d = DaemonProcess(cfg, tmp_path / "daemon.log")
    d.start()
    return d


def _done_job(d: DaemonProcess) -> str:
    r = httpx.post(f"{d.url}/api/capture", json={"source": "cli"}, headers=H, timeout=10)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    wait_until(
        lambda: httpx.get(f"{d.url}/api/jobs/{job_id}", timeout=5).json()["state"] == "done", timeout=30, what="done"
    )
    return job_id


def _prints(cfg: Path) -> dict:
    r = run_cli("printer", "status", "--json", "-c", str(cfg))
    return json.loads(r.stdout)


def test_a_disabled_queue_is_reported_everywhere_holds_the_print_and_prints_it_when_enabled(
    config_file, tmp_path: Path, broker: Mosquitto, queue: PdfQueue
) -> None:
    queue.disable("media-empty")
    d = _start(config_file, tmp_path, broker, queue)
    cfg = d.cfg
    watcher = Watcher(broker.port, ["eap/#"])
    try:
        job_id = _done_job(d)
        state = wait_until(
            lambda: (s := httpx.get(f"{d.url}/api/state", timeout=5).json()["printer"])["state"] == "paused" and s,
            what="API state paused",
        )
        assert "media-empty" in state["detail"]
        status = json.loads(run_cli("status", "--json", "-c", str(cfg)).stdout)
        assert status["printer"]["state"] == "paused" and "media-empty" in status["printer"]["detail"]
        watcher.wait(
            lambda m: m.topic == "eap/test-booth/state" and m.json().get("printer", {}).get("state") == "paused"
        )
        doctor = run_cli("doctor", "--json", "-c", str(cfg))
        check = next(c for c in json.loads(doctor.stdout) if c["name"] == "printer")
        assert check["status"] == "FAIL" and check["detail"].startswith("paused: media-empty")
        assert _prints(cfg)["state"] == "paused"

        # a print now is held, not lost
        r = run_cli("print", job_id[:8], "-c", str(cfg))
        assert r.returncode == 0, r.stderr
        wait_until(lambda: _prints(cfg)["prints"].get("held") == 1, what="the print held")

        queue.enable()
        wait_until(lambda: _prints(cfg)["prints"].get("printed") == 1, timeout=40, what="the held print printed")
        rec = _prints(cfg)["recent"][0]
        assert rec["job_id"] == job_id and rec["state"] == "printed" and rec["cups_job_id"]
        assert tuple(round(v) for v in page_size_pt(queue.output(rec["cups_job_id"]))) == (595, 842)
        wait_until(
            lambda: httpx.get(f"{d.url}/api/state", timeout=5).json()["printer"]["state"] == "ok", what="state ok"
        )
        watcher.wait(lambda m: m.topic == "eap/test-booth/state" and m.json().get("printer", {}).get("state") == "ok")
    finally:
        watcher.close()
        d.stop()
        queue.enable()


def test_the_event_limit_refuses_the_next_print_everywhere_until_reset(
    config_file, tmp_path: Path, broker: Mosquitto, queue: PdfQueue
) -> None:
    d = _start(config_file, tmp_path, broker, queue, max_prints_per_event=1, media="4x6in")
    cfg = d.cfg
    watcher = Watcher(broker.port, ["eap/test-booth/response/#"])
    try:
        job_id = _done_job(d)
        r = run_cli("print", job_id, "--wait", "-c", str(cfg))
        assert r.returncode == 0 and "printed" in r.stdout, r.stdout + r.stderr

        # the CLI
        r = run_cli("print", job_id, "-c", str(cfg))
        assert r.returncode == 1 and "event's 1 prints are used up" in r.stderr and "reset-count" in r.stderr
        # the HTTP API
        r2 = httpx.post(f"{d.url}/api/jobs/{job_id}/print", json={}, headers=H, timeout=10)
        assert r2.status_code == 429 and r2.json()["error"]["code"] == "limit"
        assert "max_prints_per_event" in r2.json()["error"]["message"]
        # MQTT
        import paho.mqtt.publish as publish

        publish.single(
            "eap/test-booth/cmd/print",
            json.dumps({"request_id": "p-1", "job_id": job_id}),
            hostname="127.0.0.1",
            port=broker.port,
        )
        reply = watcher.wait(lambda m: m.topic == "eap/test-booth/response/print").json()
        assert reply["status"] == "error" and reply["error"]["code"] == "limit"
        assert "used up" in reply["error"]["message"]

        # an operator resets the count: the next print goes
        r = run_cli("printer", "reset-count", "-c", str(cfg))
        assert r.returncode == 0 and "1 prints counted before" in r.stdout
        r = run_cli("print", job_id, "--wait", "-c", str(cfg))
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        watcher.close()
        d.stop()
