"""A real CUPS scheduler with a cups-pdf queue: what the printing tests print on.

`cupsd` is started when `lpstat -r` says no scheduler runs (cupsd listens on localhost:631 and its socket only).
Each test module makes its own queue (`PdfQueue`, a unique name) and removes it at the end, so modules never see
each other's jobs. cups-pdf writes each job to ``$HOME/PDF/<title>-job_<N>.pdf`` of the submitting user (see
/etc/cups/cups-pdf.conf); `output(cups_job_id)` finds it by the job number. Under CI=true a missing CUPS fails.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

PPD = "lsb/usr/cups-pdf/CUPS-PDF_opt.ppd"
BACKEND = Path("/usr/lib/cups/backend/cups-pdf")


def _missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CUPS is needed here: {why} (scripts/test.sh installs cups and printer-driver-cups-pdf)")
    pytest.skip(why)


def _scheduler_running() -> bool:
    r = subprocess.run(["lpstat", "-r"], capture_output=True, text=True, timeout=10)
    return "is running" in r.stdout


def ensure_cupsd() -> None:
    for tool in ("lpstat", "lpadmin", "lp", "cupsenable", "cupsdisable"):
        if shutil.which(tool) is None:
            _missing(f"no `{tool}` command")
    if not BACKEND.exists():
        _missing(f"no cups-pdf backend at {BACKEND}")
    if os.geteuid() != 0:
        _missing("the cups-pdf backend and lpadmin need root")
    if _scheduler_running():
        return
    cupsd = shutil.which("cupsd") or "/usr/sbin/cupsd"
    if not Path(cupsd).exists():
        _missing("no cupsd")
    subprocess.run([cupsd], check=True, timeout=30)  # daemonizes itself; it outlives the suite like a service
    deadline = time.monotonic() + 20
    while not _scheduler_running():
        if time.monotonic() > deadline:
            pytest.fail("cupsd was started but `lpstat -r` still says the scheduler is not running")
        time.sleep(0.2)


def pdf_dir() -> Path:
    return Path(pwd.getpwuid(os.geteuid()).pw_dir) / "PDF"


class PdfQueue:
    """One cups-pdf queue with a unique name, left at the PPD's defaults (A4, 300 dpi) like a fresh install."""

    def __init__(self, prefix: str = "ea") -> None:
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.outputs: list[Path] = []  # the PDFs it wrote, removed with the queue

    def __enter__(self) -> PdfQueue:
        ensure_cupsd()
        r = subprocess.run(
            ["lpadmin", "-p", self.name, "-E", "-v", "cups-pdf:/", "-m", PPD],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if r.returncode != 0:
            pytest.fail(f"lpadmin could not make the test queue: {r.stderr.strip()}")
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["cancel", "-a", self.name], capture_output=True, timeout=30)
        subprocess.run(["lpadmin", "-x", self.name], capture_output=True, timeout=30)
        for pdf in self.outputs:
            pdf.unlink(missing_ok=True)

    def disable(self, reason: str) -> None:
        subprocess.run(["cupsdisable", "-r", reason, self.name], check=True, timeout=30)

    def enable(self) -> None:
        subprocess.run(["cupsenable", self.name], check=True, timeout=30)

    def output(self, cups_job_id: str, timeout: float = 30.0) -> Path:
        """The PDF cups-pdf wrote for this CUPS job (waits until the file stops growing)."""
        number = cups_job_id.rsplit("-", 1)[-1]
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            found = sorted(pdf_dir().glob(f"*-job_{number}.pdf"))
            if found:
                size = found[0].stat().st_size
                if size > 0 and size == last:
                    self.outputs.append(found[0])
                    return found[0]
                last = size
            time.sleep(0.3)
        raise AssertionError(f"cups-pdf wrote no PDF for {cups_job_id} in {pdf_dir()} within {timeout:.0f} s")


def page_size_pt(pdf: Path) -> tuple[float, float]:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True, timeout=30).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("Page size:"))
    w, _, h = line.split(":", 1)[1].split()[:3]
    return float(w), float(h)


def page_png(pdf: Path, out_base: Path, dpi: int = 50) -> Path:
    """The first page as a PNG (pdftoppm), to look at the placement."""
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-singlefile", str(pdf), str(out_base)], check=True, timeout=60)
    return out_base.with_suffix(".png")
