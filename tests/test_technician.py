"""What a technician tripped over (10/11 item 9), each as the technician met it: a Windows-saved config or key
file, demo arguments that printed tracebacks or never returned, help texts, the API's answers to bad queries,
and one exit-code rule for a name that matches nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from tests.support.configs import TEST_KEY
from tests.support.proc import run_cli


def test_bom_in_config_and_key_file_is_fine(config_file, tmp_path: Path) -> None:
    cfg = config_file()
    key = tmp_path / "easy.key"
    key.write_bytes(b"\xef\xbb\xbf" + TEST_KEY.encode() + b"\r\n")  # what Windows Notepad writes
    text = cfg.read_text().replace('api_key_env = "EDGE_AGENT_TEST_KEY"', f'api_key_file = "{key}"')
    cfg.write_bytes(b"\xef\xbb\xbf" + text.encode())
    r = run_cli("once", "-c", str(cfg), "--json", env={"EDGE_AGENT_TEST_KEY": ""})
    assert r.returncode == 0, r.stderr  # the simulator accepted the key: no BOM was sent with it


def test_utf16_config_and_key_file_say_how_to_fix_them(config_file, tmp_path: Path) -> None:
    cfg = config_file()
    utf16 = tmp_path / "utf16.toml"
    utf16.write_bytes(cfg.read_text().encode("utf-16"))
    r = run_cli("check-config", str(utf16))
    assert r.returncode == 2 and "UTF-16" in r.stderr and "save it as UTF-8" in r.stderr
    key = tmp_path / "k.key"
    key.write_bytes(TEST_KEY.encode("utf-16"))
    cfg.write_text(cfg.read_text().replace('api_key_env = "EDGE_AGENT_TEST_KEY"', f'api_key_file = "{key}"'))
    r = run_cli("check-config", str(cfg))
    assert r.returncode == 2 and "platforms.easy.api_key_file" in r.stderr and "not UTF-8" in r.stderr
    assert "Traceback" not in r.stderr and TEST_KEY not in r.stderr


def test_demo_and_simulate_refuse_bad_numbers_and_folders(tmp_path: Path) -> None:
    for bad in ("-1", "nan", "inf", "abc"):
        r = run_cli("demo", "--latency", bad, "--count", "1", timeout=20)
        assert r.returncode == 2 and "--latency" in r.stderr and "Traceback" not in r.stderr, bad
        assert "invalid _" not in r.stderr  # argparse's own words name the function, not the problem
    r = run_cli("simulate", "--fail-rate", "2", timeout=20)
    assert r.returncode == 2 and "from 0 to 1" in r.stderr
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.geteuid() == 0:  # root writes anywhere: a file where the folder should be fails for root too
        ro = tmp_path / "file"
        ro.write_text("x")
    r = run_cli("demo", "--dir", str(ro), "--count", "1", timeout=20)
    assert r.returncode == 2 and "cannot use" in r.stderr and "Traceback" not in r.stderr


def test_help_shows_only_meaningful_defaults() -> None:
    for cmd in (["once"], ["trigger"], ["queue", "list"], ["demo"], ["stats"]):
        r = run_cli(*cmd, "--help")
        assert r.returncode == 0
        assert "(default: None)" not in r.stdout and "(default: False)" not in r.stdout, cmd


def test_api_answers_bad_queries_in_json(api) -> None:
    agent, http = api
    base = http.url
    r = httpx.get(f"{base}/api/jobs?limit=abc", timeout=5)
    assert r.status_code == 400 and "limit must be a whole number" in r.json()["error"]["message"]
    r = httpx.get(f"{base}/api/jobs/00000000-0000-4000-8000-000000000000", timeout=5)
    assert r.status_code == 404 and r.json()["error"]["message"].startswith("no job ")
    r = httpx.request("OPTIONS", f"{base}/api/state", timeout=5)
    assert r.headers["content-type"].startswith("application/json") and r.status_code in (204, 405)


def test_one_exit_code_for_a_name_that_matches_nothing(config_file) -> None:
    cfg = config_file()
    assert run_cli("once", "-c", str(cfg), "--json").returncode == 0  # a queue exists
    for args in (["queue", "show", "deadbeef"], ["queue", "cancel", "deadbeef"], ["queue", "retry", "deadbeef"]):
        r = run_cli(*args, "-c", str(cfg))
        assert r.returncode == 2 and "no job 'deadbeef'" in r.stderr, args
    r = run_cli("once", "-c", str(cfg), "--profile", "nope")
    assert r.returncode == 2 and "unknown profile 'nope'" in r.stderr


def test_json_commands_answer_in_json_also_when_they_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("garbage = = 1\n")
    for cmd in (["once"], ["status"], ["queue", "list"], ["stats"]):
        r = run_cli(*cmd, "-c", str(bad), "--json")
        assert r.returncode == 2, cmd
        body = json.loads(r.stdout)
        assert body["error"]["message"] == "invalid config" and "TOML syntax error" in body["error"]["details"][0]
    r = run_cli("doctor", "-c", str(bad), "--json")
    rows = {c["name"]: c for c in json.loads(r.stdout)}
    assert r.returncode == 2 and rows["config"]["status"] == "FAIL"  # a table still, exit 2: invalid config


def test_default_copies_above_the_limit_is_a_config_error(config_file) -> None:
    r = run_cli("check-config", str(config_file(printer={"enabled": False, "copies": 3, "max_copies": 2})))
    assert r.returncode == 2 and "printer.copies: 3 copies by default, but max_copies is 2" in r.stderr


def test_once_timeout_holds_on_a_sync_endpoint(config_file, tmp_path: Path) -> None:
    """images.edits answers only when the picture is done: --timeout 2 must not wait for a 20 s read timeout."""
    import time

    from tests.support.sim import running_sim

    with running_sim(latency=15.0) as slow:
        cfg = config_file()
        cfg.write_text(cfg.read_text().replace(config_url(cfg), slow.url))
        t0 = time.monotonic()
        r = run_cli("once", "-c", str(cfg), "--profile", "cartoon", "--timeout", "2", "--json")
        took = time.monotonic() - t0
    assert r.returncode == 1 and json.loads(r.stdout)["state"] in ("captured", "submitting")
    assert took < 10, f"once took {took:.1f} s with --timeout 2"  # a behaviour bound, not a benchmark


def config_url(cfg: Path) -> str:
    import tomllib

    return tomllib.loads(cfg.read_text())["platforms"]["easy"]["base_url"]


def test_a_url_where_a_file_belongs_says_so(config_file) -> None:
    cfg = config_file(
        profiles=[
            {
                "name": "tryon",
                "platform": "haiyi",
                "endpoint": "apps.run",
                "workflow_id": "1",
                "files": {"garment_image": "https://127.0.0.1/dress.png"},
            }
        ]
    )
    r = run_cli("check-config", str(cfg))
    assert r.returncode == 2 and "profiles[0].files.garment_image" in r.stderr
    assert "a URL is not a file here" in r.stderr


def test_an_unusable_state_dir_is_named_without_errno(config_file, tmp_path: Path) -> None:
    cfg = config_file(device={"id": "x", "state_dir": "/proc/edge-agent-test", "output_dir": str(tmp_path / "r")})
    for cmd in (["run"], ["once"]):
        r = run_cli(*cmd, "-c", str(cfg), timeout=30)
        assert r.returncode == 1 and "/proc/edge-agent-test" in r.stderr and "state_dir" in r.stderr, cmd
        assert "[Errno" not in r.stderr and "Traceback" not in r.stderr


def test_status_with_the_daemon_stopped_still_says_camera_and_printer(config_file) -> None:
    r = run_cli("status", "-c", str(config_file()), "--json")
    st = json.loads(r.stdout)
    assert r.returncode == 0 and st["daemon"] == "stopped"
    assert st["camera"]["state"] == "stopped" and "doctor" in st["camera"]["detail"]
    assert st["printer"] == {"state": "off", "detail": "[printer] enabled = false"}
    text = run_cli("status", "-c", str(config_file())).stdout
    assert "camera    stopped" in text and "printer   off" in text
