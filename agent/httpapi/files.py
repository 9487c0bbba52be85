"""A job's files over HTTP: only regular files that are really in the job's own folder.

The file is opened relative to the job folder with O_NOFOLLOW (a symlink, even to the job's own file, is never
followed), O_NONBLOCK (a FIFO planted there cannot block a thread) and then checked with fstat to be a regular
file; the job folder itself must not be a symlink and must really be under the output folder. What is checked is
what is served: the open descriptor, not the name again.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.jobs.model import Job
from agent.results import ResultLayout

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve(strict=True).is_relative_to(root.resolve(strict=True))
    except OSError:
        return False


def open_result(layout: ResultLayout, job: Job, name: str) -> tuple[int, int] | None:
    """(open file descriptor, size) of the job's file `name`, or None. The caller closes the descriptor."""
    path = layout.find_file(job, name)  # the layout's rule for names: plain, no path, no leading dot
    if path is None or path.name != name:
        return None
    folder = path.parent
    if not _inside(folder, layout.root):
        return None
    try:
        dir_fd = os.open(folder, _DIR_FLAGS)
    except OSError:  # ELOOP: the job's folder is a symlink
        return None
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:  # ELOOP: a symlink; ENXIO/EACCES: not ours to serve
        return None
    finally:
        os.close(dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError("not a regular file")
        os.set_blocking(fd, True)
    except OSError:
        os.close(fd)
        return None
    return fd, st.st_size
