"""A real small filesystem (tmpfs) a test can fill up, and the filler."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def small_disk(where: Path, size_mb: int = 24) -> Iterator[Path]:
    mnt = where / "disk"
    mnt.mkdir()
    cmd = ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mnt)]
    if os.geteuid() != 0:
        cmd = ["sudo", "-n", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"cannot mount a small tmpfs for the full-disk test: {r.stderr}"
    try:
        yield mnt
    finally:
        subprocess.run((["sudo", "-n"] if os.geteuid() != 0 else []) + ["umount", "-l", str(mnt)], check=False)


def fill(path: Path, leave_mb: float) -> Path:
    """Fill the filesystem of `path` until `leave_mb` are left (0: until ENOSPC); returns the filler file."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    big = path / f"filler-{leave_mb}.bin"
    n = max(0, int(free - leave_mb * 1_048_576))
    chunk = b"\x01" * 65536
    try:
        with open(big, "wb") as f:
            while n > 0:
                f.write(chunk[: min(n, len(chunk))])
                n -= len(chunk)
    except OSError:
        pass  # ENOSPC: as full as it gets
    return big
