"""The camera as a supervised service: opened in the background (never holding up the daemon's READY), watched,
re-opened with capped backoff after a failure, and honest about its state everywhere.

State (`camera_state()`; `status`, `/api/state`, MQTT `B/state`, the mode and the LEDs follow it):

    opening    the first open is under way (a capture waits for it)
    ok         captures work
    retrying   a transient fault (a frame timeout, an unplugged webcam, "Failed to allocate buffers"); the detail
               says when the next try is: "retrying in 8 s: camera /dev/video0 stopped delivering frames"
    failed     a permanent fault (picamera2 not installed, no such device, a bad control name): the detail holds
               the fix. Not retried - except when the fault names a path that may appear (a device node, an
               image folder): that path is watched, and the camera opens when it shows up.

A capture while retrying tries at once (a guest is waiting, and a replugged camera should work on the first
press); a refused capture raises CameraError with the reason and is logged once. The preview asks
`preview_frame()`: the camera's frame when it is ok, a placeholder with the reason when it is down, None (pause)
during a still.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.preview import PreviewBroadcaster, placeholder_jpeg
from hardware.camera import Camera, CameraError, Photo

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 0.5  # how often an open camera's background problems and a watched path are looked at


class CameraService:
    def __init__(
        self,
        make: Callable[[], Camera],
        *,
        on_change: Callable[[dict[str, Any]], object] | None = None,
        retry_base_s: float = 1.0,
        retry_max_s: float = 30.0,
        preview_fps: float = 10.0,
        preview_max_edge: int = 640,
        preview_quality: int = 70,
        preview_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        self._make = make
        self._on_change = on_change
        self.retry_base_s, self.retry_max_s = retry_base_s, retry_max_s
        self.preview_max_edge, self.preview_quality = preview_max_edge, preview_quality
        self._preview_transform = preview_transform
        self.camera: Camera | None = None
        self.state = "opening"
        self.detail: str | None = None
        self.failures = 0  # consecutive transient faults (the backoff exponent)
        self._appears: Path | None = None
        self._next_try = 0.0
        self._open_lock = threading.Lock()
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.capturing = threading.Event()
        self.preview = PreviewBroadcaster(self.preview_frame, preview_fps)

    # ------------------------------------------------------------------------------------------ service

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="camera", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self.preview.stop()
        if self._thread is not None:
            self._thread.join(10)
        self.close()

    def close(self) -> None:
        if self.camera is not None:
            try:
                self.camera.close()
            except Exception:
                log.exception("camera close failed")

    def camera_state(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail}

    # ------------------------------------------------------------------------------------------ use

    def capture(self) -> Photo:
        if self.state != "ok":
            self._try_now()
        if self.state != "ok":
            reason = self.detail or f"camera {self.state}"
            log.warning("capture refused: camera %s: %s", self.state, reason)
            raise CameraError(reason)
        cam = self.camera
        assert cam is not None
        self.capturing.set()
        try:
            return cam.capture()
        except CameraError as e:
            log.warning("capture refused: %s", e)
            self._fault(e)
            raise
        finally:
            self.capturing.clear()

    def preview_frame(self) -> bytes | None:
        if self.capturing.is_set():
            return None
        cam = self.camera
        if self.state != "ok" or cam is None:
            w, h = self._preview_size()
            return placeholder_jpeg(self.detail or "the camera is starting", w, h)
        try:
            return cam.preview_jpeg(self.preview_max_edge, self.preview_quality, transform=self._preview_transform)
        except CameraError as e:
            if not self.capturing.is_set():  # a still that took the camera is not a fault
                self._fault(e)
            return None

    def wait_state(self, states: tuple[str, ...], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.state not in states:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    # ------------------------------------------------------------------------------------------ machinery

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            if self.state in ("opening", "retrying") and time.monotonic() >= self._next_try:
                self._open()
            elif self.state == "failed" and self._appears is not None and self._appears.exists():
                log.info("camera: %s appeared; opening", self._appears)
                self._open()
            elif self.state == "ok" and self.camera is not None and not self.capturing.is_set():
                problem = self.camera.problem()
                if problem:
                    self._fault(CameraError(problem))
            self._wake.wait(HEALTH_INTERVAL_S)
            self._wake.clear()

    def _try_now(self) -> None:
        """A capture is waiting: open now unless the fault is permanent (and its path has not appeared)."""
        if self.state == "failed" and (self._appears is None or not self._appears.exists()):
            return
        self._open()

    def _open(self) -> None:
        with self._open_lock:
            if self.state == "ok" or self._stopping.is_set():
                return
            try:
                if self.camera is None:
                    self.camera = self._make()
                self.camera.open()
            except CameraError as e:
                self._fault(e)
                return
            except Exception as e:  # a driver bug must not kill the supervisor
                log.exception("camera open failed")
                self._fault(CameraError(f"camera open failed: {type(e).__name__}: {e}"))
                return
            self.failures = 0
            self._appears = None
            log.info("camera ready: %s", self.camera.describe())
            self._set("ok", None)

    def _fault(self, e: CameraError) -> None:
        if self.camera is not None:
            self.camera.close()  # a fresh handle next time (frees the device, the buffers, a reader thread)
        if e.permanent:
            self._appears = e.appears
            self._set("failed", e.message)
            return
        self.failures += 1
        delay = min(self.retry_max_s, self.retry_base_s * 2 ** (self.failures - 1))
        self._next_try = time.monotonic() + delay
        self._set("retrying", f"retrying in {delay:g} s: {e.message}")
        self._wake.set()

    def _set(self, state: str, detail: str | None) -> None:
        with self._changed:
            if (state, detail) == (self.state, self.detail):
                return
            self.state, self.detail = state, detail
            self._changed.notify_all()
        if state == "ok":
            pass
        elif state == "failed":
            log.error("camera failed: %s", detail)
        else:
            log.warning("camera %s", detail)
        if self._on_change is not None:
            self._on_change(self.camera_state())

    def _preview_size(self) -> tuple[int, int]:
        spec = getattr(self.camera, "cfg", None)
        w, h = (spec.width, spec.height) if spec is not None else (16, 9)
        scale = self.preview_max_edge / max(w, h)
        return max(64, round(w * scale)), max(36, round(h * scale))
