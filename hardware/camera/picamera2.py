"""The Raspberry Pi camera (libcamera) through picamera2.

picamera2 comes from apt (`python3-picamera2`), not pip, so the venv must see system packages
(`--system-site-packages`, as scripts/install.sh does). It is imported only when this driver is chosen.

What booth users of picamera2 run into, and what this driver does about it:

- "Failed to allocate buffers" after a few still captures: every mode switch frees and re-allocates the frame
  buffers, and the CMA heap fragments. Where picamera2 has it, a `PersistentAllocator` keeps each configuration's
  buffers for the life of the camera, so switching preview <-> still allocates nothing after the first time. On
  an older picamera2 the failure is reported and the supervisor re-opens the camera (which frees everything).
- A still that shows the moment before the button: the still is taken through
  `switch_mode_capture_request_and_stop`, and its `SensorTimestamp` (start of exposure, CLOCK_BOOTTIME ns) is
  compared with the trigger; a frame exposed before the trigger is dropped and another one taken.
- The live preview runs in a preview configuration whose small `lores` stream (YUV420) is what viewers get; the
  still configuration has the full size. `[camera] controls` are set in BOTH configurations (a control set only
  on one is lost at every switch). The preview is resumed after each still.
- Autofocus (Camera Module 3): `continuous` (AfMode continuous in both configurations), `on-capture` (one
  autofocus cycle before each still, given up after `af_timeout_s`: the photo is taken anyway), or `off`.
- "Camera frontend has timed out" / a stack that never answers: every picamera2 call passes `wait=` (a little
  under timeout_s), and the base class bounds it again in case the stack wedges below Python.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from hardware.camera.base import STILL_QUALITY, Camera, CameraError, CameraSpec, fit_within

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
    "and create the venv with --system-site-packages"
)
_SETTLE_FRAMES = 3  # frames let through after start so auto exposure / white balance settle
_STALE_RETRIES = 3  # frames exposed before the trigger that are dropped before giving up
AF_MODES = {"off": 0, "on-capture": 1, "continuous": 2}  # libcamera AfModeEnum: Manual, Auto, Continuous
_AF_CANCEL = 1  # AfTriggerEnum.Cancel
_CLOCK = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)  # libcamera's SensorTimestamp clock


def sensor_clock_ns() -> int:
    return time.clock_gettime_ns(_CLOCK)


def _import_picamera2() -> tuple[Any, Any]:
    try:
        from picamera2 import Picamera2
    except ImportError as e:
        raise CameraError(INSTALL_HINT, permanent=True) from e
    try:
        from picamera2.allocators import PersistentAllocator
    except ImportError:  # picamera2 before 0.3.19: every mode switch re-allocates
        PersistentAllocator = None
    return Picamera2, PersistentAllocator


def _even(size: tuple[int, int]) -> tuple[int, int]:
    return max(2, size[0] // 2 * 2), max(2, size[1] // 2 * 2)


@dataclass
class _Session:
    cam: Any
    still_cfg: dict
    preview_cfg: dict
    has_af: bool
    mode: str = "preview"  # preview | stopped


class Picamera2Camera(Camera):
    driver = "picamera2"

    def __init__(self, cfg: CameraSpec) -> None:
        super().__init__(cfg)
        self._Picamera2, self._Allocator = _import_picamera2()
        if cfg.autofocus not in AF_MODES:
            raise CameraError(
                f"unknown autofocus policy {cfg.autofocus!r} (continuous | on-capture | off)", permanent=True
            )
        self._model: str | None = None
        self._wait_s = 0.8 * self.timeout_s  # picamera2's own timeout fires before the base's bound
        self.stale_dropped = 0  # frames dropped because they were exposed before the trigger
        self.af_timeouts = 0

    def _budget(self, what: str) -> float:
        if what == "capture" and self.cfg.autofocus == "on-capture":
            return self.timeout_s + self.cfg.af_timeout_s  # focusing comes first, with its own bound
        return self.timeout_s

    # ------------------------------------------------------------------------------------------ hooks

    def _open_handle(self) -> _Session:
        num = self.cfg.camera_num
        try:
            cam = self._Picamera2(num, allocator=self._Allocator()) if self._Allocator else self._Picamera2(num)
        except IndexError:
            found = len(self._Picamera2.global_camera_info())
            raise CameraError(
                f"no Pi camera number {num} ({found} found): check the ribbon cable and `rpicam-hello --list-cameras`"
            ) from None
        except RuntimeError as e:
            raise CameraError(f"Pi camera {num} did not open ({e}): is another program using it?") from None
        try:
            session = self._configure(cam)
            cam.configure(session.preview_cfg)
            cam.start()
            for _ in range(_SETTLE_FRAMES):
                cam.capture_metadata(wait=self._wait_s)
            self._model = cam.camera_properties.get("Model")
        except BaseException:
            cam.close()
            raise
        return session

    def _configure(self, cam: Any) -> _Session:
        known = getattr(cam, "camera_controls", {}) or {}
        unknown = sorted(k for k in self.cfg.controls if known and k not in known)
        if unknown:
            raise CameraError(
                f"unknown camera control(s) {', '.join(unknown)} ([camera] controls); this camera has: "
                f"{', '.join(sorted(known))}",
                permanent=True,
            )
        controls = dict(self.cfg.controls)
        has_af = "AfMode" in known
        if has_af:
            controls["AfMode"] = AF_MODES[self.cfg.autofocus]
        elif self.cfg.autofocus != "off":
            log.info(
                "camera %d has no autofocus lens: autofocus = %r does nothing", self.cfg.camera_num, self.cfg.autofocus
            )
        # libcamera names formats by their little-endian words: "BGR888" arrives as R,G,B bytes, as Pillow wants.
        still = cam.create_still_configuration(
            main={"size": (self.cfg.width, self.cfg.height), "format": "BGR888"},
            buffer_count=1,  # a 12 MP buffer is 36 MB; a Pi Zero 2 W has 512 MB in all
            queue=False,
            controls=controls,
        )
        lores = _even(fit_within(self.cfg.width, self.cfg.height, self.cfg.preview_max_edge, self.cfg.preview_max_edge))
        main = _even(fit_within(self.cfg.width, self.cfg.height, 1280, 1280))
        main = (max(main[0], lores[0]), max(main[1], lores[1]))
        preview = cam.create_preview_configuration(
            main={"size": main, "format": "XBGR8888"},
            lores={"size": lores, "format": "YUV420"},
            buffer_count=2,
            controls=controls,
        )
        cam.options["quality"] = STILL_QUALITY
        return _Session(cam, still, preview, has_af)

    def _still(self, s: _Session) -> bytes:
        cam = s.cam
        trigger_ns = sensor_clock_ns()
        if s.has_af and self.cfg.autofocus == "on-capture":
            self._focus(s)
        s.mode = "stopped"  # the preview is stopped for the still, whatever happens next
        request = cam.switch_mode_capture_request_and_stop(s.still_cfg, wait=self._wait_s)
        try:
            if not self._fresh(request, trigger_ns):
                request.release()  # exposed before the button: not the guest's photo; the next frames are newer
                request = None
                cam.start()
                try:
                    for _ in range(_STALE_RETRIES):
                        request = cam.capture_request(wait=self._wait_s)
                        if self._fresh(request, trigger_ns):
                            break
                        request.release()
                        request = None
                finally:
                    cam.stop()
                if request is None:
                    raise CameraError("the Pi camera kept delivering frames exposed before the trigger")
            buf = io.BytesIO()
            request.save("main", buf, format="jpeg")
        finally:
            if request is not None:
                request.release()  # a request kept holds a buffer: the next capture would wait for it forever
        try:
            self._start_preview(s)
        except Exception as e:  # the still is safe; the next preview frame tries again
            log.warning("camera %d: preview did not resume after the still: %s", self.cfg.camera_num, e)
        return buf.getvalue()

    def _fresh(self, request: Any, trigger_ns: int) -> bool:
        if request.get_metadata().get("SensorTimestamp", trigger_ns) >= trigger_ns:
            return True
        self.stale_dropped += 1
        return False

    def _focus(self, s: _Session) -> None:
        if s.mode != "preview":
            self._start_preview(s)
        try:
            if not s.cam.autofocus_cycle(wait=self.cfg.af_timeout_s):
                log.warning("camera %d: autofocus did not lock; taking the photo anyway", self.cfg.camera_num)
        except TimeoutError:
            self.af_timeouts += 1
            log.warning(
                "camera %d: autofocus did not finish within %s s; taking the photo anyway",
                self.cfg.camera_num,
                self.cfg.af_timeout_s,
            )
            s.cam.set_controls({"AfTrigger": _AF_CANCEL})

    def _start_preview(self, s: _Session) -> None:
        s.cam.stop()
        s.cam.configure(s.preview_cfg)
        s.cam.start()
        s.mode = "preview"

    def _preview(self, s: _Session, max_edge: int) -> Image.Image:
        if s.mode != "preview":
            self._start_preview(s)
        return i420_to_image(s.cam.capture_array("lores", wait=self._wait_s))

    def _close_handle(self, s: _Session) -> None:
        try:
            s.cam.stop()
        finally:
            s.cam.close()

    def _describe(self) -> str:
        model = f" {self._model}" if self._model else ""
        return f"picamera2 camera {self.cfg.camera_num}{model} {self.cfg.width}x{self.cfg.height}"


def i420_to_image(arr: np.ndarray) -> Image.Image:
    """A YUV420 (I420) lores frame, shape (h * 3 / 2, w), as an RGB image (full-range BT.601, as libcamera's
    sYCC preview stream)."""
    h = arr.shape[0] * 2 // 3
    w = arr.shape[1]
    y = arr[:h].astype(np.float32)
    u = arr[h : h + h // 4].reshape(h // 2, w // 2).astype(np.float32) - 128.0
    v = arr[h + h // 4 : h + h // 2].reshape(h // 2, w // 2).astype(np.float32) - 128.0
    u = u.repeat(2, axis=0).repeat(2, axis=1)
    v = v.repeat(2, axis=0).repeat(2, axis=1)
    rgb = np.stack((y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u), axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
