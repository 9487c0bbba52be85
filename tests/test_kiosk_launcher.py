"""`edge-agent kiosk` as a process: it waits for the agent, runs real Chromium (headless here) on the page with
the clean kiosk flags, and starts it again when it dies."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.kiosk.launcher import CLEAN_FLAGS, browser_command, mark_clean_exit
from tests.support.browser import CHROMIUM
from tests.support.proc import wait_until

HEADLESS = ["--headless=new", "--no-sandbox", "--disable-gpu"]


def kiosk(args: list[str], cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "edge-agent"
    with open(log, "ab") as out:
        return subprocess.Popen([str(exe), "kiosk", "-c", str(cfg), *args], stdout=out, stderr=subprocess.STDOUT)


def test_the_command_has_the_clean_flags(tmp_path: Path) -> None:
    cmd = browser_command("/usr/bin/chromium", "http://127.0.0.1:8080/", tmp_path)
    for flag in (
        "--kiosk",
        "--noerrdialogs",
        "--disable-infobars",
        "--no-first-run",
        "--disable-session-crashed-bubble",
        "--check-for-update-interval=31536000",
        "--disable-component-update",
    ):
        assert flag in cmd
    assert any("Translate" in f for f in CLEAN_FLAGS)
    assert cmd[-1] == "http://127.0.0.1:8080/" and f"--user-data-dir={tmp_path}" in cmd


def test_a_killed_browser_is_marked_clean(tmp_path: Path) -> None:
    prefs = tmp_path / "Default" / "Preferences"
    prefs.parent.mkdir()
    prefs.write_text('{"profile": {"exited_cleanly": false, "exit_type": "Crashed", "name": "x"}}')
    mark_clean_exit(tmp_path)
    assert '"exit_type": "Normal"' in prefs.read_text() and '"name": "x"' in prefs.read_text()


def test_gives_up_when_no_agent_answers(config_file: Any, tmp_path: Path) -> None:
    cfg = config_file(http={"listen": "127.0.0.1:9"})  # nothing listens on the discard port
    headless = [f"--browser-arg={a}" for a in HEADLESS]
    p = kiosk(["--browser", CHROMIUM, "--wait", "1.5", *headless], cfg, tmp_path / "k.log")
    assert p.wait(20) == 1
    text = (tmp_path / "k.log").read_text()
    assert "waiting for the agent" in text and "did not answer" in text and "Traceback" not in text


def test_no_screen_or_root_is_said_before_anything_starts(config_file: Any, tmp_path: Path, monkeypatch) -> None:
    """Run over ssh, or from a service, Chromium has nowhere to show the page: a hint, not a restart loop."""
    import os

    cfg = config_file()
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    p = kiosk(["--browser", CHROMIUM, "--wait", "1"], cfg, tmp_path / "k.log")
    assert p.wait(20) == 2
    text = (tmp_path / "k.log").read_text()
    assert "no screen to show the kiosk on" in text and "labwc/autostart" in text and "Traceback" not in text
    if os.geteuid() == 0:
        monkeypatch.setenv("DISPLAY", ":0")
        p = kiosk(["--browser", CHROMIUM, "--wait", "1"], cfg, tmp_path / "k2.log")
        assert p.wait(20) == 2
        assert "does not run as root" in (tmp_path / "k2.log").read_text()


def test_runs_chromium_on_the_page_and_restarts_it(api: Any, config_file: Any, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing")
    agent, server = api
    log = tmp_path / "kiosk.log"
    extra = [f"--browser-arg={a}" for a in HEADLESS]
    p = kiosk(
        ["--url", server.url + "/", "--browser", CHROMIUM, "--profile-dir", str(tmp_path / "prof"), *extra],
        config_file(),
        log,
    )
    try:

        def pids() -> list[int]:
            return [int(x) for x in re.findall(r"browser started \(pid (\d+)\)", log.read_text())]

        wait_until(lambda: server.usage["event_streams"] >= 1, timeout=30, what="the page's event stream")
        first = pids()[0]
        os.kill(first, signal.SIGKILL)  # the browser crashes
        wait_until(lambda: len(pids()) >= 2, timeout=20, what="the browser started again")
        wait_until(lambda: server.usage["event_streams"] >= 1, timeout=30, what="the page back")
        assert "starting it again" in log.read_text()
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
    second = pids()[-1]
    time.sleep(0.5)
    assert not Path(f"/proc/{second}").exists() or "zombie" in Path(f"/proc/{second}/status").read_text().lower()
