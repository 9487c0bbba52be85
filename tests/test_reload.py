"""Reload without a restart, against a real `edge-agent run`: SIGHUP and `edge-agent reload` validate the file
first (a bad one is refused with its reasons in the CLI, the log and `status`, and the running config stays), key
files are read again (a fixed key makes `queue retry --failed` work without a restart), platform clients are
rebuilt (a platform moved to another address), and queued jobs are kept."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx

from tests.support.configs import TEST_KEY, base_config, merge, write_config
from tests.support.daemon import DaemonProcess
from tests.support.http import PROOF
from tests.support.proc import run_cli, wait_until


def _status(cfg: Path) -> dict:
    r = run_cli("status", "-c", str(cfg), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _jobs(url: str) -> list[dict]:
    return httpx.get(f"{url}/api/jobs", timeout=5).json()["jobs"]


def test_sighup_rereads_a_fixed_key_and_retry_then_works(sim, tmp_path: Path) -> None:
    key = tmp_path / "easy.key"
    key.write_text("sk-wrong-key-000000000\n")
    data = merge(base_config(tmp_path, sim.url), {"platforms": {"easy": {"api_key_file": str(key)}}})
    data["platforms"]["easy"].pop("api_key_env")
    cfg = write_config(tmp_path / "config.toml", data)
    with DaemonProcess(cfg, tmp_path / "daemon.log") as d:
        jid = httpx.post(f"{d.url}/api/capture", json={"profile": "cartoon"}, headers=PROOF, timeout=10).json()[
            "job_id"
        ]
        wait_until(lambda: httpx.get(f"{d.url}/api/jobs/{jid}", timeout=5).json()["state"] == "failed", 20, what="401")
        assert "401" in httpx.get(f"{d.url}/api/jobs/{jid}", timeout=5).json()["error"]

        key.write_text(TEST_KEY + "\n")  # the technician fixes the key file
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: (_status(cfg).get("reload") or {}).get("ok") is True, 15, what="reload by SIGHUP")
        assert run_cli("queue", "retry", "-c", str(cfg), "--failed").returncode == 0
        wait_until(lambda: httpx.get(f"{d.url}/api/jobs/{jid}", timeout=5).json()["state"] == "done", 30, what="done")
        assert d.running
    log = d.log_text()
    assert "reload (signal): config reloaded" in log and TEST_KEY not in log


def test_a_bad_config_is_refused_and_the_running_one_stays(sim, tmp_path: Path) -> None:
    data = base_config(tmp_path, sim.url)
    data["platforms"]["later"] = {
        "kind": "easyai",
        "base_url": "http://127.0.0.1:9",
        "api_key_env": "EDGE_AGENT_TEST_KEY",
    }
    data["profiles"].append({"name": "later", "platform": "later", "endpoint": "images.edits", "model": "m"})
    cfg = write_config(tmp_path / "config.toml", data)
    good = cfg.read_text()
    with DaemonProcess(cfg, tmp_path / "daemon.log") as d:
        # a photo waits for a platform that is away: it must survive every reload below
        waiting = httpx.post(f"{d.url}/api/capture", json={"profile": "later"}, headers=PROOF, timeout=10).json()
        cfg.write_text(good.replace("[queue]", "[queue]\nmax_jobz = 3", 1))
        r = run_cli("reload", "-c", str(cfg))
        assert r.returncode == 2 and "queue.max_jobz" in r.stderr and "keeps running its current config" in r.stderr

        # the CLI validates before asking; the daemon validates again (SIGHUP, systemctl reload)
        d.proc.send_signal(signal.SIGHUP)
        state = lambda: httpx.get(f"{d.url}/api/state", timeout=5).json()
        wait_until(lambda: (state().get("reload") or {}).get("ok") is False, 15, what="refused reload")
        st = state()
        assert any("max_jobz" in e for e in st["reload"]["errors"]) and st["mode"] in ("ready", "busy", "offline")
        assert d.running and [j["id"] for j in _jobs(d.url)] == [waiting["job_id"]]

        # the platform moves to where it really is, and a profile is added: reload, no restart
        fixed = good.replace("http://127.0.0.1:9", sim.url).replace(
            "[[profiles]]",
            '[[profiles]]\nname = "poster"\nplatform = "easy"\nendpoint = "images.edits"\nmodel = "p"\n\n[[profiles]]',
            1,
        )
        cfg.write_text(fixed)
        r = run_cli("reload", "-c", str(cfg))
        assert r.returncode == 0 and r.stdout.startswith("config reloaded"), r.stderr
        assert "poster" in httpx.get(f"{d.url}/api/state", timeout=5).json()["profiles"]
        wait_until(
            lambda: httpx.get(f"{d.url}/api/jobs/{waiting['job_id']}", timeout=5).json()["state"] == "done",
            40,
            what="the queued photo delivered by the rebuilt client",
        )
    assert "config refused, the running one stays" in d.log_text()


def test_folders_and_address_need_a_restart(sim, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.toml", base_config(tmp_path, sim.url))
    with DaemonProcess(cfg, tmp_path / "daemon.log") as d:
        moved = cfg.read_text().replace(str(tmp_path / "state"), str(tmp_path / "elsewhere"))
        cfg.write_text(moved)
        r = httpx.post(f"{d.url}/api/reload", json={}, headers=PROOF, timeout=10)
        assert r.status_code == 422 and "change only with a restart" in r.json()["errors"][0]
        assert r.json()["ok"] is False and d.running
