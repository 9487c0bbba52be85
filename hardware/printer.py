"""Printing through CUPS (``lp``): the booth's printer is one CUPS queue."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path


class PrinterError(Exception):
    pass


class CupsPrinter:
    def __init__(self, queue: str, timeout_s: float = 20.0) -> None:
        self.queue = queue
        self.timeout_s = timeout_s

    def print_file(self, path: Path, *, title: str = "edge-agent", copies: int = 1) -> str:
        """Send one file to the queue; returns the CUPS job id (e.g. "booth-12")."""
        lp = shutil.which("lp")
        if lp is None:
            raise PrinterError("CUPS is not installed (no `lp` command): apt install cups")
        try:
            r = subprocess.run(
                [lp, "-d", self.queue, "-n", str(copies), "-t", title, "--", str(path)],
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise PrinterError(f"CUPS did not accept the job within {self.timeout_s:.0f} s") from None
        if r.returncode != 0:
            raise PrinterError(f"printer queue {self.queue!r}: {(r.stderr or r.stdout).strip()[:300]}")
        m = re.search(r"request id is (\S+)", r.stdout)
        return m.group(1) if m else r.stdout.strip()
