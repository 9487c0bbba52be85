"""`edge-agent kiosk`: the booth's screen (agent/kiosk/launcher.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from agent.cli.common import EXIT_FAILED, EXIT_USAGE, CliError, load, setup_logging


def kiosk_url(listen_host: str, port: int) -> str:
    host = "127.0.0.1" if listen_host in ("0.0.0.0", "::", "") else listen_host
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def cmd_kiosk(args: argparse.Namespace) -> int:
    from agent.kiosk.launcher import KioskLauncher, find_browser, screen_blanking_off, wait_for_agent

    loaded = load(args)
    setup_logging(args, loaded)
    http = loaded.config.http
    url = args.url or kiosk_url(http.host, http.port)
    browser = find_browser(args.browser)
    if browser is None:
        raise CliError(
            f"no browser found ({args.browser or 'chromium'}): install it with `sudo apt install chromium` "
            "or give --browser PATH"
        )
    extra = list(args.browser_arg or [])
    headless = any(a.startswith("--headless") for a in extra)
    if not headless and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise CliError(
            "no screen to show the kiosk on (neither DISPLAY nor WAYLAND_DISPLAY is set): run it in the desktop "
            "session, e.g. from ~/.config/labwc/autostart (see the README), not over ssh or from a service",
            EXIT_USAGE,
        )
    if os.geteuid() == 0 and "--no-sandbox" not in extra:
        raise CliError(
            "Chromium does not run as root: start the kiosk as the desktop user (the one logged in on the screen)",
            EXIT_USAGE,
        )
    launcher = KioskLauncher(browser, url, Path(args.profile_dir).expanduser(), args.browser_arg)
    if not wait_for_agent(url, args.wait, launcher.stop_event):
        if launcher.stop_event.is_set():
            return 0
        raise CliError(
            f"the agent did not answer at {url} within {args.wait:.0f} s (is `edge-agent run` up?)", EXIT_FAILED
        )
    screen_blanking_off()
    return launcher.run()


def add_kiosk_args(s: argparse.ArgumentParser) -> None:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edge-agent" / "chromium"
    s.add_argument("--url", help="the page to show (default: the kiosk page at [http] listen)")
    s.add_argument("--browser", help="the browser to run (default: chromium, chromium-browser or google-chrome)")
    s.add_argument("--profile-dir", default=str(cache), help="the browser's own profile folder")
    s.add_argument(
        "--wait",
        type=float,
        default=None,
        help="give up after this many seconds without the agent (default: wait forever)",
    )
    s.add_argument("--browser-arg", action="append", default=[], help="one more browser flag (repeatable)")
