"""The daemon loads only what its config uses: on a Pi Zero 2 W (512 MB, shared with Chromium) every library kept
in memory for days counts. `edge-agent run` is started as a user starts it (a child process, the real command
path); once it serves, it writes the names of its loaded modules and stops. A booth without MQTT, buttons, an
OpenCV camera or a QR request must not carry paho, gpiozero, cv2, numpy or segno, nor the code of the other
commands; configured, the same features load (and work: tests/test_daemon.py, test_mqtt.py, test_gpio_*)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from PIL import Image

from tests.support.configs import KEY_ENV, TEST_KEY, write_config
from tests.support.mosquitto import Mosquitto

# Runs `edge-agent run` in this process; a thread waits for daemon.json (written once every service started),
# records sys.modules and sends SIGTERM, so the daemon stops the way systemd stops it.
LAUNCH = r"""
import json, os, signal, sys, threading, time
from pathlib import Path
cfg, out, info = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
def watch():
    while not info.exists():
        time.sleep(0.02)
    out.write_text(json.dumps(sorted(sys.modules)))
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=watch, daemon=True).start()
from agent.cli import main
sys.exit(main(["run", "-c", cfg]))
"""

OPTIONAL = ("paho", "gpiozero", "cv2", "numpy", "segno", "agent.mqtt", "agent.doctor", "agent.simulator")
OTHER_COMMANDS = ("agent.cli.jobs", "agent.cli.queue", "agent.cli.status", "agent.cli.stats", "agent.cli.tools")


def booth(tmp_path: Path, sim_url: str, **over: Any) -> Path:
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(photo)
    cfg: dict[str, Any] = {
        "device": {"id": "lean", "state_dir": str(tmp_path / "state"), "output_dir": str(tmp_path / "results")},
        "camera": {"driver": "file", "path": str(photo)},
        "platforms": {"easy": {"kind": "easyai", "base_url": sim_url, "api_key_env": KEY_ENV}},
        "profiles": [{"name": "p", "platform": "easy", "endpoint": "images.edits", "model": "m", "prompt": "x"}],
        "http": {"listen": "127.0.0.1:0"},
        "queue": {"min_free_disk_mb": 1},
        **over,
    }
    return write_config(tmp_path / "config.toml", cfg)


def loaded_modules(cfg: Path, tmp_path: Path, env: dict[str, str] | None = None) -> set[str]:
    import os

    out = tmp_path / "modules.json"
    r = subprocess.run(
        [sys.executable, "-c", LAUNCH, str(cfg), str(out), str(tmp_path / "state" / "daemon.json")],
        env={**os.environ, KEY_ENV: TEST_KEY, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return set(json.loads(out.read_text()))


def present(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if n in modules]


def test_a_plain_booth_loads_no_optional_library(tmp_path: Path, sim: Any) -> None:
    modules = loaded_modules(booth(tmp_path, sim.url), tmp_path)
    assert "agent.runtime" in modules and "httpx" in modules  # it did start
    assert present(modules, OPTIONAL) == []
    assert present(modules, OTHER_COMMANDS) == []


def test_configured_features_load_their_libraries(tmp_path: Path, sim: Any) -> None:
    broker = Mosquitto(tmp_path / "mq")
    broker.start()
    try:
        cfg = booth(
            tmp_path,
            sim.url,
            mqtt={"enabled": True, "port": broker.port},
            buttons=[{"pin": 17, "action": "capture", "profile": "p"}],
        )
        modules = loaded_modules(cfg, tmp_path, env={"GPIOZERO_PIN_FACTORY": "mock"})
    finally:
        broker.stop()
    assert present(modules, ("paho", "agent.mqtt", "gpiozero")) == ["paho", "agent.mqtt", "gpiozero"]
