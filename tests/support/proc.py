"""Running the real `edge-agent` console script, and waiting for a condition without fixed sleeps."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.configs import KEY_ENV, TEST_KEY


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path | None = None):
    """Run the real `edge-agent` console script."""
    exe = Path(sys.executable).parent / "edge-agent"
    e = {**os.environ, KEY_ENV: TEST_KEY, **(env or {})}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout, env=e, cwd=cwd)


def wait_until(pred, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def run_on_tty(*args: str, timeout: float = 60) -> tuple[int, str]:
    """Run the real `edge-agent` with its stderr on a pseudo-terminal (as a technician's shell has it); returns
    (exit code, what the terminal showed)."""
    import pty

    master, slave = pty.openpty()
    exe = Path(sys.executable).parent / "edge-agent"
    p = subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=slave, env={**os.environ, KEY_ENV: TEST_KEY})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return p.wait(timeout), b"".join(chunks).decode(errors="replace")
