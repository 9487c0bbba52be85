"""Test configs: a small, fast booth config for the simulator, merged with per-test overrides."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import tomli_w

REPO = Path(__file__).resolve().parents[2]
TEST_KEY = "sk-test-0123456789abcdef"
KEY_ENV = "EDGE_AGENT_TEST_KEY"


def base_config(tmp_path: Path, sim_url: str) -> dict[str, Any]:
    """A small, fast config: synthetic camera, one EasyAI and one Haiyi profile on the simulator."""
    return {
        "device": {"id": "test-booth", "state_dir": str(tmp_path / "state"), "output_dir": str(tmp_path / "results")},
        "camera": {"driver": "synthetic", "width": 320, "height": 240},
        "upload": {"max_edge": 512, "jpeg_quality": 85},
        "platforms": {
            "easy": {
                "kind": "easyai",
                "base_url": sim_url,
                "api_key_env": KEY_ENV,
                "poll_interval_s": 0.1,
                "read_timeout_s": 20,
            },
            "haiyi": {"kind": "haiyi", "base_url": sim_url, "api_key_env": KEY_ENV, "poll_interval_s": 0.1},
        },
        "profiles": [
            {
                "name": "cartoon",
                "platform": "easy",
                "endpoint": "images.edits",
                "model": "cartoon",
                "prompt": "make it a cartoon",
                "params": {"resolution": "1K", "n": 1},
                "remote_params": ["prompt"],
            },
            {
                "name": "oil",
                "platform": "easy",
                "endpoint": "ai.generations",
                "model": "oil",
                "prompt": "oil",
                "remote_params": ["prompt"],
            },
            {
                "name": "tryon",
                "platform": "haiyi",
                "endpoint": "apps.run",
                "workflow_id": "1234",
                "cluster": "auto",
                "prompt": "a red dress",
            },
        ],
        "http": {"listen": "127.0.0.1:0"},
        "queue": {
            "min_free_disk_mb": 1,
            "retry_base_s": 0.2,
            "retry_cap_s": 1.0,
            "probe_interval_s": 0.3,
            "remote_rate_per_min": 6000,
        },  # tests that flood set their own limit
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
