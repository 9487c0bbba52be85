"""The example configs in config/ pointed at a test simulator: base_url, key file, folders and assets rewritten,
everything else exactly as shipped."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from agent.simulator import Simulator
from tests.support.configs import REPO
from tests.support.proc import run_cli

CONFIG_DIR = REPO / "config"
ASSETS = CONFIG_DIR / "assets"
DEMO_KEY = (CONFIG_DIR / "demo.key").read_text().strip()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def example(name: str, sim: Simulator, tmp_path: Path, replace: dict[str, str] | None = None) -> Path:
    text = (CONFIG_DIR / name).read_text()
    text = text.replace("http://127.0.0.1:3001", sim.url)
    text = text.replace('"assets/', f'"{ASSETS}/').replace('"demo.key"', f'"{CONFIG_DIR / "demo.key"}"')
    text = text.replace('"../demo-output/', f'"{tmp_path}/out/')
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path


def once(cfg: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    r = run_cli("once", "-c", str(cfg), "--json", *extra)
    return r, (json.loads(r.stdout) if r.stdout.strip() else {})


def job_json(out: dict[str, Any]) -> dict[str, Any]:
    return json.loads(Path(out["result_dir"], "job.json").read_text())
