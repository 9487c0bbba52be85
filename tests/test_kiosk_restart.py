"""The kiosk page while the daemon restarts under it (a real `edge-agent run` process, SIGTERM then start): the
waiting screen says it is reconnecting, finds the guest's job again, and shows its result; a reloaded browser
(Chromium restarted by `edge-agent kiosk`) comes back to the same job's screen."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from tests.support.browser import chromium, current_job, open_kiosk, shoot, wait_js, wait_screen
from tests.support.configs import base_config, merge, write_config
from tests.support.daemon import DaemonProcess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_daemon_restart_mid_job(tmp_path: Path, sim: Any) -> None:
    sim.configure(latency=5.0)
    port = free_port()  # the same address after the restart, as on a booth
    over = {"http": {"listen": f"127.0.0.1:{port}"}, "display": {"countdown_s": 1}}
    cfg = write_config(tmp_path / "config.toml", merge(base_config(tmp_path, sim.url), over))
    daemon = DaemonProcess(cfg, tmp_path / "daemon.log")
    try:
        url = daemon.start()
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1024, "height": 600})
            open_kiosk(page, url)
            page.click("#s-attract button.primary")
            page.click("#cards .card >> nth=1")  # oil: an async task, polled by its remote id
            wait_screen(page, "waiting")
            job_id = current_job(page)
            wait_js(page, "document.querySelector('#w-stage').textContent === 'The AI is at work'")
            daemon.stop()
            wait_js(page, "!document.querySelector('#conn').hidden")  # "Reconnecting…"
            shoot(page, "reconnecting", {"1024x600": (1024, 600)})
            daemon.start()
            wait_js(page, "document.querySelector('#conn').hidden", 20_000)
            wait_screen(page, "result", 30_000)
            assert current_job(page) == job_id
            page.reload()  # the browser restarted: the same guest's screen comes back
            page.wait_for_selector("body[data-ready='1']")
            wait_screen(page, "result")
            assert current_job(page) == job_id
    finally:
        daemon.stop()
        sim.configure(latency=0.2)
