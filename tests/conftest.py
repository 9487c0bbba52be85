"""Shared fixtures: the built-in simulator over real HTTP, config files written to tmp, a running Agent."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import tomli_w

REPO = Path(__file__).resolve().parent.parent
TEST_KEY = "sk-test-0123456789abcdef"
KEY_ENV = "EDGE_AGENT_TEST_KEY"


def base_config(tmp_path: Path, sim_url: str) -> dict[str, Any]:
    """A small, fast config: synthetic camera, one EasyAI and one Haiyi profile on the simulator."""
    return {
        "device": {"id": "test-booth", "state_dir": str(tmp_path / "state"), "output_dir": str(tmp_path / "results")},
        "camera": {"driver": "synthetic", "width": 320, "height": 240},
        "upload": {"max_edge": 512, "jpeg_quality": 85},
        "platforms": {
            "easy": {"kind": "easyai", "base_url": sim_url, "api_key_env": KEY_ENV, "poll_interval_s": 0.1,
                     "read_timeout_s": 20},
            "haiyi": {"kind": "haiyi", "base_url": sim_url, "api_key_env": KEY_ENV, "poll_interval_s": 0.1},
        },
        "profiles": [
            {"name": "cartoon", "platform": "easy", "endpoint": "images.edits", "model": "cartoon",
             "prompt": "make it a cartoon", "params": {"resolution": "1K", "n": 1}, "remote_params": ["prompt"]},
            {"name": "oil", "platform": "easy", "endpoint": "ai.generations", "model": "oil", "prompt": "oil",
             "remote_params": ["prompt"]},
            {"name": "tryon", "platform": "haiyi", "endpoint": "apps.run", "workflow_id": "1234", "cluster": "auto",
             "prompt": "a red dress"},
        ],
        "http": {"listen": "127.0.0.1:0"},
        "queue": {"min_free_disk_mb": 1, "retry_base_s": 0.2, "retry_cap_s": 1.0, "probe_interval_s": 0.3},
    }


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "params":
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tomli_w.dumps(data).encode())
    return path


@pytest.fixture(autouse=True)
def _test_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, TEST_KEY)


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    from agent.simulator import SimConfig, Simulator

    s = Simulator(SimConfig(host="127.0.0.1", port=0, api_keys=(TEST_KEY,), latency=0.2, seed=3))
    s.start()
    yield s
    s.stop()


@pytest.fixture
def config_file(tmp_path: Path, sim: Any):
    """config_file(**overrides) -> Path of a TOML config for the simulator, overrides merged per section."""

    def make(**over: Any) -> Path:
        return write_config(tmp_path / "config.toml", merge(base_config(tmp_path, sim.url), over))

    return make


@pytest.fixture
def make_agent(config_file):
    """make_agent(**overrides) -> a started Agent (stopped at teardown)."""
    from agent.config import load_config
    from agent.core import Agent

    agents: list[Any] = []

    def make(**over: Any) -> Any:
        a = Agent(load_config(config_file(**over)))
        a.start()
        agents.append(a)
        return a

    yield make
    for a in agents:
        a.stop()


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path | None = None):
    """Run the real `edge-agent` console script."""
    exe = Path(sys.executable).parent / "edge-agent"
    e = {**os.environ, KEY_ENV: TEST_KEY, **(env or {})}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout, env=e, cwd=cwd)


def wait_until(pred, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
