"""The upload is prepared while the photo is being saved.

A capture is made durable (written, fsynced, its folder fsynced, the row committed) before the job may be
submitted, and the upload is prepared (decoded, scaled, encoded) when the job is submitted. The two need nothing
from each other: the saving waits on the disk, the preparing on the CPU. Started side by side, the guest waits for
the longer of the two instead of both (a 12 MP photo: ~100 ms to prepare, tens of ms to save on an SD card).

The prepared bytes are kept for the job's submit only: at most ``KEEP`` jobs (a backlog never fills memory with
them; an evicted job prepares again from its file), and only for the settings they were made with (a reload that
changes ``[upload]`` meanwhile makes the submit prepare again). It is done for a guest's photo when a job thread
is free (agent/core.py): a remote capture or a busy booth would only prepare twice.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from agent.steps.prepare import Orientation, prepare_upload

log = logging.getLogger(__name__)

KEEP = 2  # a guest's photo and the next one; the backlog prepares from its files
Settings = tuple[int, int, Orientation]  # max_edge, jpeg_quality, orientation


class PrepareAhead:
    """``start`` when the photo exists, ``take`` when the job is submitted. ``run`` executes a call on some
    worker thread (the scheduler's pool: its threads wait on the network at that moment)."""

    def __init__(self, run: Callable[[Callable[[], bytes]], Future[bytes]]) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._made: OrderedDict[str, tuple[Settings, Future[bytes], list[bytes]]] = OrderedDict()
        self.used = 0  # submits that took their upload from here (the rest prepared from the file)

    def start(self, job_id: str, jpeg: bytes, settings: Settings) -> None:
        max_edge, quality, orientation = settings
        photo = [jpeg]  # emptied when the job is evicted: a queued call must not keep the picture alive

        def make() -> bytes:
            if not photo:
                raise LookupError("evicted")
            return prepare_upload(photo.pop(), max_edge, quality, orientation=orientation)

        try:
            fut = self._run(make)
        except RuntimeError:  # the pool is shutting down: the submit prepares from the file
            return
        fut.add_done_callback(lambda _: photo.clear())
        with self._lock:
            self._made[job_id] = (settings, fut, photo)
            while len(self._made) > KEEP:
                _, (_, old, held) = self._made.popitem(last=False)
                held.clear()
                old.cancel()

    def take(self, job_id: str, settings: Settings) -> bytes | None:
        """The prepared upload (waiting for it if it is still being made), or None: not made, made for other
        settings, or it failed (the submit then prepares from the file and reports the error itself)."""
        with self._lock:
            got = self._made.pop(job_id, None)
        if got is None or got[0] != settings:
            return None
        try:
            made = got[1].result()
        except Exception as e:  # the file's own prepare then names the problem for the job
            log.debug("job %s: the early prepare failed (%s); preparing from the file", job_id, e)
            return None
        self.used += 1
        return made

    def forget(self, job_id: str) -> None:
        with self._lock:
            got = self._made.pop(job_id, None)
        if got is not None:
            got[2].clear()
            got[1].cancel()


def settings_of(upload: Any) -> Settings:
    """The prepare settings of an ``[upload]`` section."""
    return upload.max_edge, upload.jpeg_quality, Orientation.of(upload.rotate, upload.mirror, upload.crop_aspect)
