"""Printing through CUPS: the booth's printer is one CUPS queue, driven with the CUPS command-line tools.

Why `lp`/`lpstat`/`cupsenable` and not pycups: they come with the `cups-client` package every CUPS install has, so
nothing is compiled into the venv (pycups builds against libcups2-dev, or needs the venv to see apt's
python3-cups); and each call is a child process with a timeout, so a scheduler that hangs costs one killed
process, never a stuck thread inside libcups. The price is a fork per look (a few milliseconds, every couple of
seconds while a print is out). Every call here takes and returns plain values: nothing from ``agent``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

TIMEOUT_S = 20.0  # `lp` on a busy Pi with a large file can take seconds; longer means CUPS is stuck


class PrinterError(Exception):
    pass


class PrinterTimeout(PrinterError):
    """A CUPS tool did not answer in time. For `lp` this means "maybe sent": CUPS may already hold the job."""


@dataclass
class QueueStatus:
    """What `lpstat` says about one queue."""

    exists: bool
    enabled: bool = False
    accepting: bool = False
    printing: str | None = None  # the CUPS job id being printed
    message: str = ""  # printer-state-message (a `cupsdisable -r` reason, a backend's complaint)
    reasons: list[str] = field(default_factory=list)  # printer-state-reasons, e.g. media-empty-error, paused


@dataclass
class CupsJob:
    """One CUPS job as `lpstat` shows it: `active` (pending, held or printing) or finished."""

    job_id: str
    active: bool
    alerts: list[str] = field(default_factory=list)  # job-state-reasons

    @property
    def cancelled(self) -> bool:
        return any(a.startswith(("job-canceled", "aborted")) for a in self.alerts)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PrinterError(f"CUPS is not installed (no `{name}` command): apt install cups")
    return path


def _run(args: list[str], timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=None, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise PrinterTimeout(f"CUPS did not answer `{Path(args[0]).name}` within {timeout:.0f} s") from None


def _scheduler_down(text: str) -> bool:
    return "scheduler is not running" in text or "Unable to connect" in text


class CupsPrinter:
    def __init__(self, queue: str, timeout_s: float = TIMEOUT_S) -> None:
        self.queue = queue
        self.timeout_s = timeout_s

    # ------------------------------------------------------------------------------------------ jobs

    def print_file(
        self, path: Path, *, title: str = "edge-agent", copies: int = 1, options: dict[str, str] | None = None
    ) -> str:
        """Send one file to the queue; returns the CUPS job id (e.g. "booth-12")."""
        args = [_tool("lp"), "-d", self.queue, "-n", str(copies), "-t", title]
        for k, v in (options or {}).items():
            args += ["-o", f"{k}={v}"]
        r = _run([*args, "--", str(path)], self.timeout_s)
        if r.returncode != 0:
            text = (r.stderr or r.stdout).strip()
            if _scheduler_down(text):
                raise PrinterError("the CUPS scheduler is not running (systemctl start cups)")
            raise PrinterError(f"printer queue {self.queue!r}: {text[:300]}")
        m = re.search(r"request id is (\S+)", r.stdout)
        if not m:
            raise PrinterError(f"`lp` gave no job id: {r.stdout.strip()[:200]}")
        return m.group(1)

    def job(self, job_id: str) -> CupsJob | None:
        """Where a CUPS job is now; None when CUPS has no record of it (its history was purged)."""
        for which, active in (("not-completed", True), ("completed", False)):
            r = _run([_tool("lpstat"), "-l", "-W", which, "-o", self.queue], self.timeout_s)
            if r.returncode != 0:
                text = (r.stderr or r.stdout).strip()
                if _scheduler_down(text):
                    raise PrinterError("the CUPS scheduler is not running")
                if "Invalid destination" in text or "does not exist" in text:
                    raise PrinterError(f"there is no CUPS queue {self.queue!r}")
                raise PrinterError(f"lpstat: {text[:200]}")
            found = _parse_jobs(r.stdout).get(job_id)
            if found is not None:
                return CupsJob(job_id, active, found)
        return None

    # ------------------------------------------------------------------------------------------ queue

    def status(self) -> QueueStatus:
        lpstat = _tool("lpstat")
        r = _run([lpstat, "-l", "-p", self.queue], self.timeout_s)
        text = (r.stdout + r.stderr).strip()
        if _scheduler_down(text):
            raise PrinterError("the CUPS scheduler is not running (systemctl start cups)")
        if r.returncode != 0 or not r.stdout.startswith("printer "):
            return QueueStatus(exists=False, message=text[:200])
        lines = r.stdout.splitlines()
        head = lines[0]
        st = QueueStatus(exists=True, enabled=" disabled since" not in head)
        m = re.search(r"now printing (\S+?)\.?\s", head + " ")
        st.printing = m.group(1) if m else None
        for line in lines[1:]:
            s = line.strip()
            if s.startswith("Alerts:"):
                st.reasons = [a for a in s[len("Alerts:") :].split() if a != "none"]
            elif line.startswith("\t") and not line.startswith("\t\t") and ":" not in s and s and not st.message:
                st.message = s  # the line under the header is printer-state-message
        a = _run([lpstat, "-a", self.queue], self.timeout_s)
        st.accepting = a.returncode == 0 and "not accepting" not in a.stdout and "accepting" in a.stdout
        return st

    def enable(self) -> None:
        r = _run([_tool("cupsenable"), self.queue], self.timeout_s)
        if r.returncode != 0:
            raise PrinterError(f"cupsenable {self.queue}: {(r.stderr or r.stdout).strip()[:200]}")

    def defaults(self) -> dict[str, str]:
        """The queue's default choices (PPD or IPP), e.g. {"PageSize": "A4", "Resolution": "300dpi"}."""
        r = _run([_tool("lpoptions"), "-p", self.queue, "-l"], self.timeout_s)
        if r.returncode != 0:
            raise PrinterError(f"lpoptions -p {self.queue}: {(r.stderr or r.stdout).strip()[:200]}")
        out: dict[str, str] = {}
        for line in r.stdout.splitlines():
            key, _, choices = line.partition(":")
            star = next((c[1:] for c in choices.split() if c.startswith("*")), None)
            if star is not None:
                out[key.split("/")[0].strip()] = star
        return out


def _parse_jobs(text: str) -> dict[str, list[str]]:
    """`lpstat -l -o` output -> {job id: its alerts}."""
    jobs: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line and not line[0].isspace():
            current = line.split()[0]
            jobs[current] = []
        elif current is not None and line.strip().startswith("Alerts:"):
            jobs[current] = [a for a in line.strip()[len("Alerts:") :].split() if a != "none"]
    return jobs
