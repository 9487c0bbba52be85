"""A choice on every trigger (HTTP, MQTT, CLI, buttons), the catalogue (`GET /api/profiles`, thumbnails, MQTT
`B/profiles`, the Home Assistant select), and the answers to a wrong choice. Real parts only: the simulator over
HTTP, the agent's HTTP API on loopback, a real Mosquitto, the real console script; GPIO on gpiozero's MockFactory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from gpiozero.pins.mock import MockFactory
from PIL import Image

from agent.config import load_config
from agent.core import Agent
from agent.httpapi import HttpApi
from tests.support.configs import base_config, merge
from tests.support.daemon import DaemonProcess
from tests.support.gpio import Booth as GpioBooth
from tests.support.gpio import tap
from tests.support.http import PROOF
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt import Booth as MqttBooth
from tests.support.mqtt import Watcher, response_to
from tests.support.proc import run_cli, wait_until

UNKNOWN = "unknown choice 'gown' for profile 'tryon' (choices: dress01, suit02)"


def _catalogue(tmp_path: Path) -> dict[str, Any]:
    """The base config's try-on profile with two garments: one with a PNG thumbnail, one without."""
    thumb = tmp_path / "dress01.png"
    Image.new("RGB", (64, 80), (200, 30, 30)).save(thumb)
    cfg = base_config(tmp_path, "http://127.0.0.1:1")  # the caller's merge sets the simulator's URL
    tryon = next(p for p in cfg["profiles"] if p["name"] == "tryon")
    tryon["choices"] = [
        {"id": "dress01", "label": "Red dress", "thumbnail": str(thumb)},
        {"id": "suit02", "label": "Blue suit"},
    ]
    return {"profiles": cfg["profiles"]}


@pytest.fixture
def catalogue_api(config_file, tmp_path: Path):
    agent = Agent(load_config(config_file(**_catalogue(tmp_path))))
    agent.start()
    server = HttpApi(agent)
    server.start()
    yield agent, server
    server.stop()
    agent.stop()


def test_profiles_and_thumbnails_over_http(catalogue_api, tmp_path: Path) -> None:
    agent, server = catalogue_api
    with httpx.Client(base_url=server.url, timeout=10) as http:
        doc = http.get("/api/profiles").json()
        assert [(p["name"], p["endpoint"], p["default"]) for p in doc["profiles"]] == [
            ("cartoon", "images.edits", True),
            ("oil", "ai.generations", False),
            ("tryon", "apps.run", False),
        ]
        tryon = doc["profiles"][2]
        assert tryon["choices"] == [
            {"id": "dress01", "label": "Red dress", "thumbnail_url": "/api/profiles/tryon/choices/dress01/thumbnail"},
            {"id": "suit02", "label": "Blue suit", "thumbnail_url": None},
        ]
        assert str(tmp_path) not in json.dumps(doc)  # no local path is ever shown

        r = http.get(tryon["choices"][0]["thumbnail_url"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content == (tmp_path / "dress01.png").read_bytes()
        assert r.headers["x-content-type-options"] == "nosniff"

        assert http.get("/api/profiles/tryon/choices/suit02/thumbnail").status_code == 404
        r = http.get("/api/profiles/tryon/choices/gown/thumbnail")
        assert r.status_code == 404 and r.json()["error"]["message"] == "no choice 'gown' in profile 'tryon'"
        for probe in ("/api/profiles/tryon/choices/..%2F..%2Fetc%2Fpasswd/thumbnail", "/api/profiles/../etc/passwd"):
            assert http.get(probe).status_code == 404

    # a thumbnail file that is not an image (a config mistake) is refused, not served as whatever it is
    (tmp_path / "dress01.png").write_text("<script>alert(1)</script>")
    r = httpx.get(f"{server.url}/api/profiles/tryon/choices/dress01/thumbnail", timeout=10)
    assert r.status_code == 500 and "not a PNG, JPEG, WebP or GIF" in r.json()["error"]["message"]
    assert "<script>" not in r.text


def test_choice_on_http_capture_and_the_error_answers(catalogue_api) -> None:
    agent, server = catalogue_api
    with httpx.Client(base_url=server.url, timeout=10, headers=PROOF) as http:
        r = http.post("/api/capture", json={"profile": "tryon", "choice": "dress01"})
        assert r.status_code == 202 and r.json()["choice"] == "dress01"
        job = http.get(f"/api/jobs/{r.json()['job_id']}").json()
        assert job["choice"] == "dress01" and job["profile"] == "tryon"
        assert len(job["share_token"]) >= 20 and job["share_token"] not in job["id"]

        r = http.post("/api/capture", json={"profile": "tryon", "choice": "gown"})
        assert r.status_code == 404 and r.json()["error"] == {"code": "not_found", "message": UNKNOWN}
        r = http.post("/api/capture", json={"profile": "cartoon", "choice": "dress01"})
        assert r.json()["error"]["message"] == "unknown choice 'dress01' for profile 'cartoon' (choices: none)"
        for bad in ("../dress01.png", "/etc/passwd", "http://evil.example/x.png", 7):
            r = http.post("/api/capture", json={"profile": "tryon", "choice": bad})
            assert r.status_code == 400, bad
        wait_until(lambda: agent.store.counts() == {"done": 1}, timeout=20, what="the one good capture done")


def test_choice_over_mqtt_catalogue_and_home_assistant(sim, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker")
    try:
        raw = merge(base_config(tmp_path, sim.url), _catalogue(tmp_path))
        raw["mqtt"] = {
            "enabled": True,
            "host": "127.0.0.1",
            "port": broker.port,
            "topic_prefix": "ch",
            "homeassistant_discovery": True,
        }
        w = Watcher(broker.port, ["ch/#", "homeassistant/#"])
        booth = MqttBooth(raw, tmp_path)
        try:
            B = booth.B
            profiles = w.wait(lambda m: m.topic == f"{B}/profiles").json()
            dress = profiles["profiles"][2]["choices"][0]
            assert dress["thumbnail_url"].startswith("http://127.0.0.1:") and dress["thumbnail_url"].endswith(
                "/api/profiles/tryon/choices/dress01/thumbnail"
            )
            ha = w.wait(lambda m: m.topic == "homeassistant/device/test-booth/config").json()
            select = ha["cmps"]["selection"]
            assert select["p"] == "select" and select["options"] == [
                "cartoon",
                "oil",
                "tryon",
                "tryon/dress01",
                "tryon/suit02",
            ]
            assert w.wait(lambda m: m.topic == f"{B}/selection").payload == b"cartoon"

            w.publish(f"{B}/cmd/capture", {"request_id": "c1", "profile": "tryon", "choice": "suit02"})
            ok = response_to(w, B, "c1")
            assert ok["status"] == "ok" and ok["data"]["choice"] == "suit02"
            assert booth.agent.store.get(ok["data"]["job_id"]).choice == "suit02"

            w.publish(f"{B}/cmd/capture", {"request_id": "c2", "profile": "tryon", "choice": "gown"})
            assert response_to(w, B, "c2")["error"] == {"code": "not_found", "message": UNKNOWN}
            w.publish(f"{B}/cmd/capture", {"request_id": "c3", "profile": "tryon", "choice": "/etc/passwd"})
            err = response_to(w, B, "c3")["error"]
            assert err["code"] == "bad_request" and "never a path or URL" in err["message"]

            # Home Assistant: pick a garment in the select, then its "Capture selected" button
            mark = w.mark()
            w.publish(select["command_topic"], "tryon/dress01")
            assert w.wait(lambda m: m.topic == f"{B}/selection", since=mark).payload == b"tryon/dress01"
            w.publish(select["command_topic"], "tryon/../../x")  # not an option: ignored
            press = ha["cmps"]["capture_selected"]["command_template"]
            assert '"selected":true' in press
            w.publish(f"{B}/cmd/capture", {"request_id": "ha-1", "selected": True, "ts": time.time(), "ttl_s": 60})
            data = response_to(w, B, "ha-1")["data"]
            assert (data["profile"], data["choice"]) == ("tryon", "dress01")
        finally:
            booth.close()
            w.close()
    finally:
        broker.stop()


def test_choice_on_the_cli_once_and_trigger(config_file, tmp_path: Path) -> None:
    cfg = config_file(**_catalogue(tmp_path))
    r = run_cli("once", "-c", str(cfg), "--profile", "tryon", "--choice", "dress01", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["state"] == "done" and out["choice"] == "dress01" and out["stage"] == "done"
    r = run_cli("once", "-c", str(cfg), "--profile", "tryon", "--choice", "gown")
    assert r.returncode == 2 and r.stderr.strip() == f"edge-agent: {UNKNOWN}"

    with DaemonProcess(cfg, tmp_path / "daemon.log") as d:
        r = run_cli("trigger", "-c", str(cfg), "--profile", "tryon", "--choice", "suit02", "--wait")
        assert r.returncode == 0, r.stderr
        job = httpx.get(f"{d.url}/api/jobs/{r.stdout.split()[0]}", timeout=10).json()
        assert job["choice"] == "suit02" and job["state"] == "done"
        r = run_cli("trigger", "-c", str(cfg), "--profile", "tryon", "--choice", "gown")
        assert r.returncode == 2 and UNKNOWN in r.stderr


def test_button_choice_and_its_config_check(sim, config_file, tmp_path: Path) -> None:
    cat = _catalogue(tmp_path)
    bad = config_file(**cat, buttons=[{"pin": 17, "profile": "tryon", "choice": "gown"}])
    r = run_cli("check-config", str(bad))
    assert r.returncode == 2 and r.stderr.strip() == f"{bad}: buttons[0].choice: {UNKNOWN}"
    bad = config_file(**cat, buttons=[{"pin": 17, "action": "cancel", "profile": "tryon", "choice": "dress01"}])
    r = run_cli("check-config", str(bad))
    assert r.returncode == 2 and 'buttons[0].choice: a choice needs action = "capture"' in r.stderr

    path = config_file(
        **cat,
        buttons=[
            {"pin": 17, "profile": "tryon", "choice": "dress01", "hold_action": "capture", "hold_choice": "x"},
        ],
    )
    r = run_cli("check-config", str(path))
    # hold_choice names a choice of hold_profile (none: the default profile, which has no choices)
    assert r.returncode == 2 and "buttons[0].hold_choice: unknown choice 'x' for profile 'cartoon'" in r.stderr
    path = config_file(**cat, buttons=[{"pin": 17, "profile": "tryon", "choice": "dress01"}])
    assert run_cli("check-config", str(path)).returncode == 0
    booth = GpioBooth(Agent(load_config(path)), MockFactory())
    booth.agent.start()
    try:
        board = booth.buttons()
        tap(booth.pin(17))
        ev = booth.rec.wait(lambda e: e.type == "job.captured", what="job.captured")
        assert ev.data["profile"] == "tryon" and ev.data["choice"] == "dress01" and ev.data["source"] == "button"
        assert list(board.sent) == [(17, "capture", "tryon/dress01")]
        booth.wait_done(ev.data["job_id"])
    finally:
        booth.close()
