"""`edge-agent kiosk`: wait for the agent's API, then keep Chromium on the kiosk page, full screen.

Chromium gets the flags that keep a public screen clean (no first-run page, no infobars, no "restore pages?"
bubble, no translate offer, no update checks, no swipe-back or pinch) and its own profile folder. When it exits
or crashes it is started again, with a growing pause if it keeps dying. On X11 the screen saver and DPMS are
switched off; on Wayland (labwc, wayfire) blanking is the session's setting (see the README).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import FrameType

import httpx

log = logging.getLogger(__name__)

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CLEAN_FLAGS = (
    "--kiosk",
    "--start-fullscreen",
    "--noerrdialogs",
    "--disable-infobars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-session-crashed-bubble",
    "--disable-features=Translate,TranslateUI,InfiniteSessionRestore",
    "--disable-translate",
    "--check-for-update-interval=31536000",
    "--disable-component-update",
    "--disable-background-networking",
    "--overscroll-history-navigation=0",
    "--disable-pinch",
    "--autoplay-policy=no-user-gesture-required",  # a video result plays by itself
    "--password-store=basic",  # no keyring prompt on a booth without a desktop login
)
STABLE_AFTER_S = 60.0  # a browser that ran this long and then died starts again at once
MAX_PAUSE_S = 30.0


def find_browser(given: str | None = None) -> str | None:
    if given:
        return given if Path(given).exists() or shutil.which(given) else None
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    return None


def browser_command(browser: str, url: str, profile_dir: Path, extra: list[str] | None = None) -> list[str]:
    return [browser, *CLEAN_FLAGS, f"--user-data-dir={profile_dir}", *(extra or []), url]


def mark_clean_exit(profile_dir: Path) -> None:
    """Chromium shows "Chromium didn't shut down correctly - restore?" after a kill; its profile is told it ended
    cleanly before each start (the flag alone no longer hides the bubble in every version)."""
    prefs = profile_dir / "Default" / "Preferences"
    try:
        data = json.loads(prefs.read_text())
    except (OSError, ValueError):
        return
    profile = data.setdefault("profile", {})
    profile["exited_cleanly"] = True
    profile["exit_type"] = "Normal"
    try:
        prefs.write_text(json.dumps(data))
    except OSError:
        pass


def screen_blanking_off() -> None:
    """X11: no screen saver, no DPMS. Under Wayland there is nothing a client may switch (see the README)."""
    if os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and (xset := shutil.which("xset")):
        for args in (["s", "off"], ["s", "noblank"], ["-dpms"]):
            subprocess.run([xset, *args], check=False, timeout=5, capture_output=True)


def wait_for_agent(url: str, timeout: float | None, stop: threading.Event) -> bool:
    """True once GET <url>/api/state answers 200; False when `timeout` (None: forever) passes or on stop."""
    deadline = None if timeout is None else time.monotonic() + timeout
    said = False
    while not stop.is_set():
        try:
            if httpx.get(url.rstrip("/") + "/api/state", timeout=3).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if not said:
            log.info("waiting for the agent at %s", url)
            said = True
        if deadline is not None and time.monotonic() > deadline:
            return False
        stop.wait(1.0)
    return False


class KioskLauncher:
    def __init__(self, browser: str, url: str, profile_dir: Path, extra: list[str] | None = None) -> None:
        self.command = browser_command(browser, url, profile_dir, extra)
        self.profile_dir = profile_dir
        self.stop_event = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_event.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        pause = 1.0
        while not self.stop_event.is_set():
            mark_clean_exit(self.profile_dir)
            began = time.monotonic()
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL)
            self.starts += 1
            log.info("browser started (pid %d)", self.proc.pid)
            code = self.proc.wait()
            if self.stop_event.is_set():
                break
            ran = time.monotonic() - began
            pause = 1.0 if ran > STABLE_AFTER_S else min(pause * 2, MAX_PAUSE_S)
            log.warning("browser exited with code %s after %.0f s; starting it again in %.0f s", code, ran, pause)
            self.stop_event.wait(pause)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return 0
