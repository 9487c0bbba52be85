"""Fleet config push over a real Mosquitto to a real `edge-agent run`: off unless the device opts in; a pushed
config is validated (no secret may travel in it), applied by a reload, answered on the response topic, and rolled
back by itself when it does not come up healthy (here: MQTT pointed at a broker that is not there); the booth runs
the pushed config after a restart."""

from __future__ import annotations

import copy
import json
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

from agent.configpush import pushed_path
from tests.support.configs import base_config, merge, write_config
from tests.support.daemon import DaemonProcess
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt import Watcher, response_to
from tests.support.proc import wait_until


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory):
    b = Mosquitto(tmp_path_factory.mktemp("broker"))
    yield b
    b.stop()


def _booth(tmp_path: Path, sim_url: str, port: int, **mqtt: Any) -> dict:
    return merge(
        base_config(tmp_path, sim_url),
        {
            "device": {"id": "push-booth"},
            "mqtt": {"enabled": True, "host": "127.0.0.1", "port": port, "topic_prefix": "fleet1", **mqtt},
        },
    )


def _push(w: Watcher, rid: str, data: dict, topic: str = "fleet1/push-booth/cmd/config") -> dict:
    since = w.mark()
    w.publish(topic, {"request_id": rid, "config": tomli_w.dumps(data)})
    return response_to(w, "fleet1/push-booth", rid, action="config", since=since, timeout=30)


def test_push_is_off_unless_the_device_opts_in(sim, broker: Mosquitto, tmp_path: Path) -> None:
    data = _booth(tmp_path, sim.url, broker.port)
    cfg = write_config(tmp_path / "config.toml", data)
    w = Watcher(broker.port, ["fleet1/push-booth/response/+"])
    try:
        with DaemonProcess(cfg, tmp_path / "daemon.log") as d:
            wait_until(lambda: httpx.get(f"{d.url}/api/state", timeout=5).json().get("mqtt") == "connected", 15)
            r = _push(w, "p1", data)
            assert r["status"] == "error" and r["error"]["code"] == "forbidden"
            assert "allow_config_push" in r["error"]["message"]
    finally:
        w.close()


def test_push_applies_refuses_secrets_rolls_back_and_survives_a_restart(sim, broker: Mosquitto, tmp_path: Path) -> None:
    data = _booth(tmp_path, sim.url, broker.port, allow_config_push=True, config_push_health_s=5)
    cfg = write_config(tmp_path / "config.toml", data)
    w = Watcher(broker.port, ["fleet1/push-booth/response/+"])
    d = DaemonProcess(cfg, tmp_path / "daemon.log")
    try:
        d.start()
        state = lambda: httpx.get(f"{d.url}/api/state", timeout=5).json()
        wait_until(lambda: state().get("mqtt") == "connected", 15, what="MQTT")

        # a secret in the push: refused, nothing changes
        leaky = copy.deepcopy(data)
        leaky["platforms"]["easy"]["api_key"] = "sk-should-never-travel-123"
        r = _push(w, "p-secret", leaky)
        assert r["status"] == "error" and "platforms.easy.api_key" in r["error"]["message"]
        assert "sk-should-never-travel" not in json.dumps(r) and not pushed_path(tmp_path / "state").exists()

        # the fleet can never be reached again without MQTT: refused by the health check, rolled back
        good = copy.deepcopy(data)
        good["profiles"].append({"name": "poster", "platform": "easy", "endpoint": "images.edits", "model": "p"})
        r = _push(w, "p-good", good)
        assert r["status"] == "ok" and r["data"]["applied"] is True, r
        assert "poster" in state()["profiles"]
        f = pushed_path(tmp_path / "state")
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600

        broken = copy.deepcopy(good)
        broken["mqtt"]["port"] = 9  # nothing listens there
        broken["profiles"].append({"name": "never", "platform": "easy", "endpoint": "images.edits", "model": "n"})
        r = _push(w, "p-broken", broken)
        assert r["status"] == "error" and r["error"]["code"] == "rolled_back"
        assert "MQTT did not connect within 5 s" in r["error"]["message"]
        wait_until(lambda: state().get("mqtt") == "connected", 15, what="MQTT back after the rollback")
        profiles = state()["profiles"]
        assert "poster" in profiles and "never" not in profiles

        # a fleet-wide push would give every booth the same id: refused
        r = _push(w, "p-fleet", good, topic="fleet1/fleet/cmd/config")
        assert r["status"] == "error" and "never to the fleet" in r["error"]["message"]

        d.stop()
        d.start()  # the pushed config is newer than the device's own file: it is the one that runs
        assert "poster" in state()["profiles"]
        assert "sk-should-never-travel" not in d.log_text()
    finally:
        d.stop()
        w.close()
