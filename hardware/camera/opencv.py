"""A USB webcam / V4L2 device through OpenCV, a network MJPEG stream, or a video file played in a loop (tests,
demos).

`device` is `/dev/videoN`, an index (`0` or `"0"`), a stream URL, or a path to a video file. A live source is
opened like this, because this is what goes wrong with real webcams:

- the pixel format (`fourcc`, MJPG by default) is set BEFORE the size: many UVC cameras only offer 1080p at a
  usable frame rate in MJPG, and a size asked for first is chosen among the raw (YUYV) modes;
- the size and format the camera really gave are read back and logged when they differ from what was asked;
- `warmup_frames` frames are dropped (auto exposure and white balance settle on the first frames);
- with `newest_frame` (the default) a reader thread drains the device all the time (grabber.py), so a still is the
  first frame grabbed after the trigger; without it, the frames buffered since the last read are flushed by
  timing (a grab that had to wait for the sensor was fresh), which misses buffers a driver refills at once;
- a source that stops delivering (unplugged) is reported as a problem at once, and the camera is re-opened by
  whoever supervises it (agent/camera_service.py).

A video file is read frame by frame in order and starts again at its end; it is not warmed up or flushed.
Every OpenCV call runs inside the base class's timeout.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from hardware.camera.base import STILL_QUALITY, Camera, CameraError, CameraSpec, fit_within
from hardware.camera.grabber import NewestFrameReader, SourceLost

log = logging.getLogger(__name__)

# A grab that waits longer than this waited for the sensor, so the frame behind it is fresh (no reader thread).
_FRESH_FRAME_S = 0.012
_MAX_FLUSH = 6  # V4L2 drivers buffer up to 4 frames; a couple more for luck


def _import_cv2() -> Any:
    # OpenCV prints "[ WARN:0@0.050] ..." lines of its own on stderr (in `doctor`, `once`): the driver reports
    # what matters as errors with a fix; an operator may still ask for them with OPENCV_LOG_LEVEL=WARNING
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")
    try:
        import cv2
    except ImportError as e:
        raise CameraError(
            "OpenCV is not installed: `pip install opencv-python-headless` in the venv "
            "(or on Raspberry Pi OS `sudo apt install python3-opencv` with a --system-site-packages venv)",
            permanent=True,
        ) from e
    return cv2


def fourcc_text(code: float) -> str:
    n = int(code)
    text = "".join(chr((n >> (8 * i)) & 0xFF) for i in range(4))
    return text if n and text.isprintable() else "?"


class OpenCVCamera(Camera):
    driver = "opencv"

    def __init__(self, cfg: CameraSpec) -> None:
        super().__init__(cfg)
        self._cv2 = _import_cv2()
        dev = cfg.device
        self._source: int | str = int(dev) if isinstance(dev, int) or str(dev).isdigit() else str(dev)
        self._is_file = isinstance(self._source, str) and Path(self._source).is_file()
        self._size: tuple[int, int] | None = None  # what the device actually delivers, once open
        self.reader: NewestFrameReader | None = None  # the current reader thread (tests and benchmarks look)

    # ------------------------------------------------------------------------------------------ hooks

    def _open_handle(self) -> Any:
        cv2 = self._cv2
        if isinstance(self._source, str) and not self._is_v4l2 and "://" not in self._source:
            if not Path(self._source).is_file():
                raise CameraError(f"no such video file: {self._source}")
            self._is_file = True
        backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") and self._is_v4l2 else cv2.CAP_ANY
        cap = cv2.VideoCapture(self._source, backend)
        if not cap.isOpened():
            cap.release()
            missing = self._device_path() if self._is_missing_device() else None
            raise CameraError(self._open_failure(), permanent=missing is not None, appears=missing)
        try:
            if not self._is_file:
                self._configure(cap)
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            self._size = (w, h) if w > 0 and h > 0 else None
        except BaseException:
            cap.release()
            raise
        if self._is_file or not self.cfg.newest_frame:
            return cap
        self.reader = NewestFrameReader(cap, str(self._source), on_exit=cap.release)
        return self.reader

    def _configure(self, cap: Any) -> None:
        cv2 = self._cv2
        if self._is_v4l2:
            # Order matters: the format first, then the size (asked the other way round, a UVC camera picks the
            # size among its raw modes, where 1080p runs at ~5 fps on USB 2).
            if self.cfg.fourcc:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.cfg.fourcc))
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # honoured by some drivers only; the reader thread covers the rest
            got_w, got_h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            got_fourcc = fourcc_text(cap.get(cv2.CAP_PROP_FOURCC))
            if (got_w, got_h) != (self.cfg.width, self.cfg.height) or (
                self.cfg.fourcc and got_fourcc != self.cfg.fourcc
            ):
                log.warning(
                    "camera %s: asked for %dx%d %s, the camera gives %dx%d %s",
                    self._source,
                    self.cfg.width,
                    self.cfg.height,
                    self.cfg.fourcc or "(any format)",
                    got_w,
                    got_h,
                    got_fourcc,
                )
        for _ in range(self.cfg.warmup_frames):
            if not cap.grab():
                raise CameraError(f"camera {self._source} opened but delivers no frames")

    def _still(self, handle: Any) -> bytes:
        frame = self._read(handle)
        return self._encode(frame, self.cfg.width, self.cfg.height, STILL_QUALITY)

    def _preview(self, handle: Any, max_edge: int) -> bytes:
        frame = self._read(handle)
        return self._encode(frame, max_edge, max_edge, 85)  # the base re-encodes it at the preview quality

    def _close_handle(self, handle: Any) -> None:
        if isinstance(handle, NewestFrameReader):
            handle.stop(self.timeout_s)  # the reader releases the device on its way out, however late
            if handle is self.reader:
                self.reader = None
        else:
            handle.release()

    def _problem(self, handle: Any) -> str | None:
        return handle.error if isinstance(handle, NewestFrameReader) else None

    def _describe(self) -> str:
        w, h = self._size or (self.cfg.width, self.cfg.height)
        what = f"{self._source} (video file)" if self._is_file else str(self._source)
        return f"opencv {what} {w}x{h}"

    # ------------------------------------------------------------------------------------------ helpers

    @property
    def _is_v4l2(self) -> bool:
        return isinstance(self._source, int) or self._source.startswith("/dev/")

    def _read(self, handle: Any) -> Any:
        if isinstance(handle, NewestFrameReader):
            try:
                frame, _ = handle.frame_after(time.monotonic(), self.timeout_s)
            except SourceLost as e:
                raise CameraError(str(e)) from None
            return frame
        cap = handle
        if self._is_file:
            ok, frame = cap.read()
            if not ok:  # the end: loop
                cap.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = cap.read()
            if not ok or frame is None:
                raise CameraError(f"cannot read a frame from video file {self._source}")
            return frame
        # Live without a reader: grab until a grab had to wait for the sensor; everything before it was stale.
        for _ in range(_MAX_FLUSH):
            started = time.monotonic()
            if not cap.grab():
                raise CameraError(f"camera {self._source} stopped delivering frames (unplugged?)")
            if time.monotonic() - started > _FRESH_FRAME_S:
                break
        ok, frame = cap.retrieve()
        if not ok or frame is None:
            raise CameraError(f"camera {self._source} delivered an unreadable frame")
        return frame

    def _encode(self, frame: Any, box_w: int, box_h: int, quality: int) -> bytes:
        cv2 = self._cv2
        if frame.ndim == 3 and frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        h, w = frame.shape[:2]
        size = fit_within(w, h, box_w, box_h)
        if size != (w, h):
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise CameraError(f"camera {self._source}: JPEG encoding failed")
        return buf.tobytes()

    def _device_path(self) -> Path | None:
        src = self._source
        if not self._is_v4l2:
            return None
        return Path(f"/dev/video{src}") if isinstance(src, int) else Path(src)

    def _is_missing_device(self) -> bool:
        # A device node that does not exist stays missing until someone plugs it in: no point retrying fast
        # forever, but the supervisor still looks again now and then (a camera plugged in later heals).
        path = self._device_path()
        return path is not None and not path.exists()

    def _open_failure(self) -> str:
        src = self._source
        path = self._device_path()
        if path is None:
            return f"cannot open video source {src} (not a video OpenCV can read, or the stream is unreachable)"
        if not path.exists():
            why = "no such device (is the camera plugged in? `v4l2-ctl --list-devices` lists cameras)"
        elif not os.access(path, os.R_OK | os.W_OK):
            why = "permission denied"
        else:
            why = "the device did not open (busy in another program, or not a capture device)"
        return (
            f"cannot open camera {src}: {why}; the user running edge-agent must be in the `video` group "
            f"(`sudo usermod -aG video $USER`, then log in again)"
        )
