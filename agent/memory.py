"""How the process uses the C heap: set once, at start, before any thread runs.

glibc gives every thread that allocates its own malloc arena (up to 8 per core), and a picture's buffers (a
1920x1080 frame is 6 MB; its JPEG, its decoded and resized copies) freed in one arena are kept there for that
arena's next use. With a dozen threads that ever touched a picture, the daemon sat at 180-210 MB after 50 jobs
although it holds one picture at a time. Two settings fix it, for every way the daemon is started (not only the
systemd unit's ``MALLOC_ARENA_MAX``):

* ``M_ARENA_MAX`` = 2: threads share two arenas (the daemon's threads mostly wait on sockets, not on malloc);
* ``M_MMAP_THRESHOLD`` = 256 KiB, fixed: a block this large is its own mapping and goes back to the system when
  freed. glibc would otherwise raise the threshold after the first large free (up to 32 MB), and picture buffers
  would be carved from the arenas, to stay there fragmented.

An environment variable the user set (``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``) wins. Elsewhere than glibc
(musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENA_MAX = 2
MMAP_THRESHOLD = 256 * 1024
TRIM_THRESHOLD = 1024 * 1024  # free heap tops above this are given back (glibc's default is 128 KiB, dynamic)

_done = False


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):
        return None  # not glibc
    return libc


_libc = _load_libc()


def tune_malloc() -> bool:
    """Set the arena limit and a fixed mmap threshold (once; True when glibc took them). Call it before the
    process starts threads: an arena made earlier stays."""
    global _done
    if _done:
        return True
    if _libc is None:
        return False
    mallopt = _libc.mallopt
    ok = True
    if "MALLOC_ARENA_MAX" not in os.environ:
        ok = mallopt(M_ARENA_MAX, ARENA_MAX) == 1 and ok
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and ok
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        ok = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    if threading.active_count() > 1:
        log.debug("malloc tuned after %d threads started; their arenas stay", threading.active_count())
    _done = ok
    return ok


_trim_lock = threading.Lock()
_last_trim = 0.0
_owed = False  # a trim was asked for within TRIM_EVERY_S of the last one and skipped
TRIM_EVERY_S = 2.0


def release_free_memory() -> None:
    """Give the heap's free pages back to the system (malloc_trim), at most every TRIM_EVERY_S: called when a
    job has let go of its pictures. One asked for sooner is owed (see release_owed_memory)."""
    global _last_trim, _owed
    now = time.monotonic()
    with _trim_lock:
        if _libc is None:
            return
        if now - _last_trim < TRIM_EVERY_S:
            _owed = True
            return
        _last_trim, _owed = now, False
    _libc.malloc_trim(0)


def release_owed_memory() -> None:
    """The trim skipped by the rate limit, once it is allowed: without it the pages the last jobs of a burst
    freed stay held until the next job. Cheap when nothing is owed (the daemon's main loop calls it every tick)."""
    if _owed:
        release_free_memory()


__all__ = ["release_free_memory", "release_owed_memory", "tune_malloc"]
