"""`edge-agent run` as a child process: started, waited for (its daemon.json), SIGTERMed or SIGKILLed, restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent.config import load_config
from tests.support.configs import KEY_ENV, TEST_KEY
from tests.support.proc import wait_until


class DaemonProcess:
    def __init__(self, cfg: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.cfg, self.log = cfg, log
        self.env = {**os.environ, KEY_ENV: TEST_KEY, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.state_dir = load_config(cfg).config.device.state_dir
        self.starts = 0
        self.url = ""

    def start(self, timeout: float = 20.0) -> str:
        """Start and wait until the API serves (daemon.json written); returns the API's URL."""
        info = self.state_dir / "daemon.json"
        info.unlink(missing_ok=True)
        exe = Path(sys.executable).parent / "edge-agent"
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [str(exe), "run", "-c", str(self.cfg)], stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        self.starts += 1
        proc = self.proc
        wait_until(lambda: info.exists() or proc.poll() is not None, timeout=timeout, what="daemon start")
        assert proc.poll() is None, self.log_text()[-3000:]
        self.url = json.loads(info.read_text())["url"]
        return self.url

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (a clean stop); SIGKILL after `timeout`. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def __enter__(self) -> DaemonProcess:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
