"""Durable file writes: a photo a guest took must survive a power cut the moment the trigger is acknowledged.

write → fsync(file) → rename over the final name → fsync(directory). After a crash the final name holds either
nothing or the whole file, never a torn one.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def fsync_dir(path: Path, *, strict: bool = True) -> None:
    """Make a folder's entries (a rename, a new file) durable. `strict=False`: a folder that cannot be synced
    (a FUSE mount, a vanished folder) is skipped instead of failing the write that already succeeded."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if strict:
            raise
    finally:
        os.close(fd)


def make_dirs_durable(path: Path) -> None:
    """mkdir -p, fsyncing each parent whose entry was created, so the new folders survive a power cut."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            pass
        fsync_dir(d.parent)


def write_durable(path: Path, data: bytes, *, sync_dir: bool = True, sync: bool = True) -> None:
    """Atomic (temp file + rename: readers see the old or the new file, never a torn one); with `sync` also
    durable (fsynced, and the folder too when `sync_dir`), so it survives a power cut."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    if sync and sync_dir:
        fsync_dir(path.parent)
