"""One live preview for any number of viewers (the kiosk page, a technician's browser, `curl`).

One producer thread asks the camera service for a frame at most `fps` times a second and hands the same JPEG to
every viewer (a Condition; each viewer waits for a newer frame than the one it sent). The camera is never asked
more often because more people watch, a slow viewer only misses frames (it always gets the newest), and the
producer stops when the last viewer has been gone for IDLE_STOP_S - an unwatched preview costs nothing.
During a still the camera service answers None: the producer waits and viewers keep the last frame.
When the camera is down the frames are a placeholder that says why.
"""

from __future__ import annotations

import io
import logging
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from PIL import Image

log = logging.getLogger(__name__)

IDLE_STOP_S = 2.0  # the producer outlives its last viewer this long (a page reload does not restart the camera)


class PreviewBroadcaster:
    def __init__(self, frame: Callable[[], bytes | None], fps: float) -> None:
        self._frame = frame  # the camera service's preview frame: JPEG, a placeholder, or None (paused)
        self.interval = 1.0 / fps
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._viewers = 0
        self._last_left = 0.0
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.produced = 0  # frames made since start (tests and benchmarks compare it with frames delivered)

    @property
    def viewers(self) -> int:
        return self._viewers

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @contextmanager
    def viewer(self) -> Iterator[Viewer]:
        with self._cond:
            if self._stopped:
                raise RuntimeError("the preview is stopped")
            self._viewers += 1
            if not self.running:
                self._thread = threading.Thread(target=self._produce, name="preview", daemon=True)
                self._thread.start()
        try:
            yield Viewer(self)
        finally:
            with self._cond:
                self._viewers -= 1
                self._last_left = time.monotonic()

    def snapshot(self, timeout: float) -> bytes | None:
        """One current frame (GET /api/preview.jpg): the producer's latest when it runs, else one made now."""
        with self._cond:
            if self.running and self._jpeg is not None:
                return self._jpeg
        deadline = time.monotonic() + timeout
        while True:
            jpeg = self._frame()
            if jpeg is not None or time.monotonic() >= deadline:
                return jpeg
            time.sleep(0.05)  # paused for a still: the next frame comes right after it

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)

    def _wait_newer(self, seq: int, timeout: float) -> tuple[int, bytes | None]:
        with self._cond:
            if self._seq <= seq and not self._stopped:
                self._cond.wait(timeout)
            if self._seq > seq:
                return self._seq, self._jpeg
            return seq, None

    def _produce(self) -> None:
        next_at = time.monotonic()
        while True:
            with self._cond:
                idle = self._viewers == 0 and time.monotonic() - self._last_left > IDLE_STOP_S
                if self._stopped or idle:
                    self._thread = None if idle else self._thread
                    self._jpeg = None  # a stale frame must not be served as "current" later
                    return
            try:
                jpeg = self._frame()
            except Exception:  # the service reports camera faults itself; the preview just carries on
                log.exception("preview frame failed")
                jpeg = None
            if jpeg is not None:
                with self._cond:
                    self._jpeg = jpeg
                    self._seq += 1
                    self.produced += 1
                    self._cond.notify_all()
            next_at = max(next_at + self.interval, time.monotonic())
            time.sleep(max(0.0, next_at - time.monotonic()))


class Viewer:
    def __init__(self, broadcaster: PreviewBroadcaster) -> None:
        self._b = broadcaster
        self._seq = 0
        self.received = 0

    def next_frame(self, timeout: float = 1.0) -> bytes | None:
        """The newest frame this viewer has not had yet, or None after `timeout` (nothing new)."""
        self._seq, jpeg = self._b._wait_newer(self._seq, timeout)
        if jpeg is not None:
            self.received += 1
        return jpeg


_PLACEHOLDERS: dict[tuple[str, int, int], bytes] = {}


def placeholder_jpeg(reason: str, width: int, height: int) -> bytes:
    """A dark frame that says the camera is down and why (cached: the reason changes rarely)."""
    key = (reason, width, height)
    if key in _PLACEHOLDERS:
        return _PLACEHOLDERS[key]
    from PIL import ImageDraw, ImageFont  # FreeType and HarfBuzz (~1.5 MB) only for a booth whose camera is down

    im = Image.new("RGB", (width, height), (32, 32, 40))
    draw = ImageDraw.Draw(im)
    big = max(12, height // 12)
    small = max(10, height // 24)
    try:
        font_big: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.load_default(size=big)
        font_small: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.load_default(size=small)
    except TypeError:  # Pillow without FreeType
        font_big = font_small = ImageFont.load_default()
    draw.text((width // 16, height // 4), "Camera unavailable", fill=(240, 240, 240), font=font_big)
    chars = max(20, int(width / (small * 0.55)) - 4)
    y = height // 4 + big * 2
    for line in textwrap.wrap(reason, chars)[:6]:
        draw.text((width // 16, y), line, fill=(200, 200, 120), font=font_small)
        y += int(small * 1.4)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=70)
    if len(_PLACEHOLDERS) > 16:
        _PLACEHOLDERS.clear()
    _PLACEHOLDERS[key] = buf.getvalue()
    return _PLACEHOLDERS[key]
