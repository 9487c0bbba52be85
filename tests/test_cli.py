"""The console script for real: `once` on both platforms, the daemon as a subprocess, `trigger --wait`, `queue`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.support.configs import KEY_ENV, TEST_KEY
from tests.support.daemon import DaemonProcess
from tests.support.http import PROOF
from tests.support.proc import run_cli, run_on_tty, wait_until


@pytest.mark.parametrize("profile", ["cartoon", "oil", "tryon"])
def test_once_json_for_each_platform(config_file, profile: str) -> None:
    cfg = config_file()
    r = run_cli("once", "-c", str(cfg), "--profile", profile, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["state"] == "done" and out["profile"] == profile and out["error"] is None
    for o in out["outputs"]:
        Image.open(o["path"]).verify()
    assert Path(out["result_dir"], "capture.jpg").is_file()


def test_once_with_an_image_file_prints_paths(config_file, tmp_path: Path) -> None:
    src = tmp_path / "guest.png"
    Image.new("RGB", (400, 300), (200, 40, 40)).save(src)
    r = run_cli("once", "-c", str(config_file()), "--image", str(src))
    assert r.returncode == 0, r.stderr
    paths = r.stdout.split()
    assert len(paths) == 1 and Path(paths[0]).name == "result-1.png"
    with Image.open(paths[0]) as im:
        assert im.size[0] / im.size[1] == pytest.approx(4 / 3, rel=0.02)


def test_once_failure_exits_1_with_reason(config_file) -> None:
    cfg = config_file(
        profiles=[
            {"name": "bad", "platform": "easy", "endpoint": "images.edits", "model": "m", "prompt": "FAIL please"}
        ]
    )
    r = run_cli("once", "-c", str(cfg))
    assert r.returncode == 1
    assert r.stderr.strip().endswith(
        "failed: EasyAI failed: simulated failure: the prompt contains FAIL (images.edits)"
    )
    assert "WARNING" not in r.stderr


def test_once_live_progress_on_a_terminal(config_file, sim) -> None:
    """`once` draws a progress line when stderr is a TTY (a pty here)."""
    sim.configure(latency=1.0)
    try:
        code, screen = run_on_tty("once", "-c", str(config_file()), "--profile", "oil")
        assert code == 0
    finally:
        sim.configure(latency=0.2)
    assert "running" in screen and "%" in screen and "\r" in screen  # the stage a guest reads (tests/test_progress.py)


def test_once_bad_config_exits_2(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[device]\nidd = 1\n")
    r = run_cli("once", "-c", str(p))
    assert r.returncode == 2
    assert r.stderr.strip() == f"{p}: device.idd: unknown key (did you mean 'id'?)"


@pytest.fixture
def daemon(config_file, tmp_path: Path):
    cfg = config_file()
    d = DaemonProcess(cfg, tmp_path / "daemon.log")
    d.start()
    try:
        assert d.proc is not None
        yield d.proc, cfg, d.url
    finally:
        d.stop()


def test_daemon_http_api_and_trigger_wait(daemon, tmp_path: Path) -> None:
    proc, cfg, url = daemon
    with httpx.Client(base_url=url, timeout=10, headers=PROOF) as http:
        assert http.get("/api/state").json()["mode"] == "ready"
        r = http.post("/api/capture", json={"profile": "cartoon"})
        assert r.status_code == 202
        job_id = r.json()["job_id"]
        job = wait_until(
            lambda: (j := http.get(f"/api/jobs/{job_id}").json())["state"] == "done" and j, timeout=20, what="job done"
        )
        res = http.get(job["outputs"][0]["url"].removeprefix(url))
        assert res.status_code == 200 and res.headers["content-type"] == "image/png"
        assert http.get(f"/results/{job_id}/../../etc/passwd").status_code == 404
        assert http.post("/api/capture", json={"profile": 5}).status_code == 400
        assert (
            http.post("/api/capture", content=b"{not json", headers={"content-type": "application/json"}).json()[
                "error"
            ]["code"]
            == "bad_request"
        )
        assert http.get("/api/jobs/00000000-0000-0000-0000-000000000000").status_code == 404

    r = run_cli("trigger", "-c", str(cfg), "--wait", "--profile", "tryon")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert len(lines) == 2 and Path(lines[1]).is_file()

    r = run_cli("status", "-c", str(cfg), "--json")
    st = json.loads(r.stdout)
    assert st["daemon"] == "running" and st["queue"] == {"done": 2}

    r = run_cli("trigger", "-c", str(cfg), "--profile", "nope")
    assert r.returncode == 2 and "unknown profile 'nope'" in r.stderr

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert not (tmp_path / "state" / "daemon.json").exists()
    log = (tmp_path / "daemon.log").read_text()
    assert "running: device test-booth" in log and TEST_KEY not in log
    r = run_cli("trigger", "-c", str(cfg))
    assert r.returncode == 1 and "the daemon is not running" in r.stderr
    r = run_cli("status", "-c", str(cfg), "--json")
    assert json.loads(r.stdout)["daemon"] == "stopped"


def test_queue_tools_with_the_daemon_stopped(config_file) -> None:
    cfg = config_file(
        profiles=[{"name": "bad", "platform": "easy", "endpoint": "images.edits", "model": "m", "prompt": "FAIL"}]
    )
    assert run_cli("once", "-c", str(cfg)).returncode == 1
    r = run_cli("queue", "list", "-c", str(cfg), "--json")
    jobs = json.loads(r.stdout)
    assert [j["state"] for j in jobs] == ["failed"]
    jid = jobs[0]["id"]
    r = run_cli("queue", "show", "-c", str(cfg), jid[:8])
    assert r.returncode == 0 and "state           failed" in r.stdout and "history:" in r.stdout
    r = run_cli("queue", "retry", "-c", str(cfg), jid)
    assert r.returncode == 0 and "queued again" in r.stdout
    r = run_cli("queue", "list", "-c", str(cfg), "--state", "captured")
    assert jid in r.stdout
    r = run_cli("queue", "cancel", "-c", str(cfg), jid)
    assert r.returncode == 0 and f"{jid} cancelled" in r.stdout
    r = run_cli("queue", "cancel", "-c", str(cfg), jid)
    assert r.returncode == 1 and "already cancelled" in r.stderr
    r = run_cli("queue", "purge", "-c", str(cfg), "--failed")
    assert "1 job(s) and their photos and results would be deleted; add --yes" in r.stdout
    assert len(json.loads(run_cli("queue", "list", "-c", str(cfg), "--json").stdout)) == 1
    r = run_cli("queue", "-c", str(cfg), "purge", "--failed", "--yes")  # -c before the action works too
    assert "purged 1" in r.stdout
    assert json.loads(run_cli("queue", "list", "-c", str(cfg), "--json").stdout) == []
    r = run_cli("queue", "show", "-c", str(cfg), "deadbeef")
    assert r.returncode == 2 and "no job 'deadbeef'" in r.stderr
    r = run_cli("queue", "show", "-c", str(cfg), "f1e")
    assert r.returncode == 2 and "give at least 4 characters of the job id" in r.stderr


def test_queue_tools_while_the_daemon_runs(daemon, sim) -> None:
    proc, cfg, url = daemon
    with httpx.Client(base_url=url, timeout=10, headers=PROOF) as http:
        jid = http.post("/api/capture", json={"profile": "oil", "source": "cli", "params": {"prompt": "SLOW"}}).json()[
            "job_id"
        ]
        wait_until(lambda: http.get(f"/api/jobs/{jid}").json()["state"] == "submitted", what="submitted")
        task = http.get(f"/api/jobs/{jid}").json()["remote_task_id"]
        r = run_cli("queue", "cancel", "-c", str(cfg), jid)
        assert r.returncode == 0 and f"remote task {task} cancelled" in r.stdout
        assert next(t for t in sim.tasks() if str(t["task_id"]) == task)["state"] == "cancelled"
        wait_until(lambda: http.get("/api/state").json()["mode"] == "ready", what="daemon saw the cancel")
        assert http.get(f"/api/jobs/{jid}").json()["state"] == "cancelled"

        r = run_cli("queue", "retry", "-c", str(cfg), jid[:8])
        assert r.returncode == 0
        # the running daemon picks the job up again and submits a new task
        wait_until(
            lambda: (j := http.get(f"/api/jobs/{jid}").json())["state"] == "submitted" and j["remote_task_id"] != task,
            timeout=15,
            what="re-submitted by the daemon",
        )


def test_demo_runs_three_jobs(tmp_path: Path) -> None:
    r = run_cli("demo", "--count", "3", "--dir", str(tmp_path / "demo"), "--latency", "0.3")
    assert r.returncode == 0, r.stderr
    results = [line.split()[1] for line in r.stdout.splitlines() if line.startswith("result ")]
    assert len(results) == 3 and all(Path(p).is_file() for p in results)
    assert "3/3 jobs done" in r.stdout


def test_systemd_notify_ready_and_watchdog(config_file, tmp_path: Path) -> None:
    """Under systemd (Type=notify) the daemon says READY=1, then WATCHDOG=1 while it is healthy, a STATUS line
    for `systemctl status`, RELOADING=1/READY=1 around a reload (SIGHUP), and STOPPING=1."""
    import socket as so

    addr = str(tmp_path / "notify.sock")
    sock = so.socket(so.AF_UNIX, so.SOCK_DGRAM)
    sock.bind(addr)
    sock.settimeout(15)
    exe = Path(sys.executable).parent / "edge-agent"
    proc = subprocess.Popen(
        [str(exe), "run", "-c", str(config_file())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, KEY_ENV: TEST_KEY, "NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "600000"},
    )
    try:
        msgs = [sock.recv(1024).decode() for _ in range(4)]
        assert msgs[0].startswith("READY=1")
        assert msgs[1:].count("WATCHDOG=1") >= 2
        status = [m for m in msgs if m.startswith("STATUS=")]
        assert status and "ready" in status[0] and "0 job(s) in work" in status[0]
        proc.send_signal(signal.SIGHUP)
        after = [sock.recv(1024).decode() for _ in range(6)]
        reloading = [i for i, m in enumerate(after) if m.startswith("RELOADING=1")]
        assert reloading and after[reloading[0] + 1].startswith("READY=1\nSTATUS=config reloaded"), after
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert any(sock.recv(1024).decode().startswith("STOPPING=1") for _ in range(5))
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()


def test_api_token_required_from_other_addresses(config_file, tmp_path: Path) -> None:
    from agent.config import load_config
    from agent.core import Agent
    from agent.httpapi import HttpApi

    tok = tmp_path / "token"
    tok.write_text("tok-0123456789\n")
    agent = Agent(load_config(config_file(http={"listen": "127.0.0.1:0", "token_file": str(tok)})))
    api = HttpApi(agent)
    try:
        assert api.authorized("127.0.0.1", None) and api.authorized("::1", None)
        assert not api.authorized("192.0.2.7", None)
        assert not api.authorized("192.0.2.7", "Bearer wrong")
        assert api.authorized("192.0.2.7", "Bearer tok-0123456789")
    finally:
        api.stop()
        agent.stop()


def test_simulate_subcommand(tmp_path: Path) -> None:
    import socket as so

    with so.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "edge-agent"
    proc = subprocess.Popen(
        [
            str(exe),
            "simulate",
            "--port",
            str(port),
            "--key",
            "k1",
            "--latency",
            "0.1",
            "--quirk",
            "wrap_data",
            "--fail-rate",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"simulator listening on http://127.0.0.1:{port}" in line
        cfg = httpx.get(f"http://127.0.0.1:{port}/_sim/config", timeout=5).json()
        assert "wrap_data" in cfg["quirks"] and cfg["latency"] == 0.1
        assert (
            httpx.get(
                f"http://127.0.0.1:{port}/v1/ai/result/x", headers={"Authorization": "Bearer nope"}, timeout=5
            ).status_code
            == 401
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    r = run_cli("simulate", "--quirk", "no_such_quirk", "--port", str(port))
    assert r.returncode == 2 and "no_such_quirk" in r.stderr


def test_daemon_with_an_opencv_video_camera(config_file, tmp_path: Path) -> None:
    """The daemon captures from a real video file through OpenCV; `once` points at `trigger` meanwhile."""
    import cv2
    import numpy as np

    video = tmp_path / "guests.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(10):
        w.write(np.full((240, 320, 3), (i * 25, 80, 200 - i * 20), np.uint8))
    w.release()
    cfg = config_file(camera={"driver": "opencv", "device": str(video), "width": 320, "height": 240})
    with DaemonProcess(cfg, tmp_path / "daemon.log"):
        r = run_cli("trigger", "-c", str(cfg), "--wait")
        assert r.returncode == 0, r.stderr
        job_dir = Path(r.stdout.split()[1]).parent
        with Image.open(job_dir / "capture.jpg") as im:
            assert im.size == (320, 240)
        r = run_cli("once", "-c", str(cfg))
        assert r.returncode == 1 and "the running daemon holds the camera" in r.stderr


def test_once_gives_up_waiting_but_keeps_the_photo_queued(config_file) -> None:
    import socket as so

    with so.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    cfg = config_file(platforms={"easy": {"base_url": dead}})
    r = run_cli("once", "-c", str(cfg), "--timeout", "2", "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["state"] == "captured" and "no answer" in out["error"]
    assert "it stays queued and the daemon will deliver it" in r.stderr
    listed = json.loads(run_cli("queue", "list", "-c", str(cfg), "--json").stdout)
    assert [j["id"] for j in listed] == [out["job_id"]]


def test_a_second_daemon_on_the_same_state_is_refused(daemon, tmp_path: Path) -> None:
    proc, cfg, url = daemon
    r = run_cli("run", "-c", str(cfg), timeout=30)
    assert r.returncode == 1
    assert (
        f"another edge-agent daemon is already running with state_dir {tmp_path / 'state'} (pid {proc.pid}" in r.stderr
    )
    assert httpx.get(f"{url}/api/state", timeout=5).json()["mode"] == "ready"  # the first one is untouched


def test_listen_address_in_use_is_a_clear_error(config_file) -> None:
    import socket as so

    with so.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_cli("run", "-c", str(config_file(http={"listen": f"127.0.0.1:{port}"})), timeout=30)
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} ([http] listen): Address already in use" in r.stderr


def test_an_unusable_store_is_reported_not_moved_aside(config_file, tmp_path: Path) -> None:
    cfg = config_file()
    (tmp_path / "state" / "jobs.db").mkdir(parents=True)  # cannot be opened as a database: not "damage"
    r = run_cli("once", "-c", str(cfg))
    assert r.returncode == 1 and "cannot open the job store" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "state" / "jobs.db").is_dir() and not list((tmp_path / "state").glob("*damaged*"))


@pytest.mark.parametrize(
    "content,msg",
    [
        (b"hello", "not an image (Pillow cannot identify it)"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "the image cannot be read"),
    ],
)
def test_once_refuses_a_bad_image_before_queuing(config_file, tmp_path: Path, content: bytes, msg: str) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(content)
    cfg = config_file()
    r = run_cli("once", "-c", str(cfg), "--image", str(bad))
    assert r.returncode == 2 and f"{bad}: {msg}" in r.stderr and "Traceback" not in r.stderr
    assert (
        not (tmp_path / "state" / "jobs.db").exists()
        or json.loads(run_cli("queue", "list", "-c", str(cfg), "--json").stdout) == []
    )


def test_demo_never_touches_a_real_queue(config_file, tmp_path: Path) -> None:
    cfg = config_file()
    assert run_cli("once", "-c", str(cfg)).returncode == 0  # a real queue in tmp_path/state
    r = run_cli("demo", "--count", "1", "--dir", str(tmp_path))
    assert r.returncode == 2 and "holds a queue the demo did not create" in r.stderr


def test_config_option_anywhere_and_check_config_with_c(config_file) -> None:
    cfg = str(config_file())
    assert run_cli("check-config", "-c", cfg).returncode == 0
    assert run_cli("-c", cfg, "status", "--json").returncode == 0
    r = run_cli("queue", "-c", cfg, "list")
    assert r.returncode == 0 and r.stdout.startswith("no jobs")
    r = run_cli("once", "-c", cfg, "--timeout", "-1")
    assert r.returncode == 2 and "must be more than 0" in r.stderr
