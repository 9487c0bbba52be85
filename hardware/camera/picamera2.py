"""The Raspberry Pi camera (libcamera) through picamera2.

picamera2 comes from apt (`python3-picamera2`), not pip, so the venv must see system packages
(`--system-site-packages`, as scripts/install.sh does). It is imported only when this driver is chosen.

The camera runs in a still configuration at width x height with one buffer (a 12 MP buffer is 36 MB, and a
Pi Zero 2 W has 512 MB in all) and `queue=False`, so a capture waits for a frame exposed after it was asked for
instead of handing back one queued earlier. Every picamera2 call passes `wait=` a little under timeout_s, so
picamera2's own timeout normally ends a slow call cleanly; the base class bounds the call again at timeout_s in
case the camera stack wedges below Python and ignores it.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from hardware.camera.base import STILL_QUALITY, Camera, CameraError, CameraSpec

INSTALL_HINT = (
    "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
    "and create the venv with --system-site-packages"
)
_SETTLE_FRAMES = 3  # frames let through after start so auto exposure / white balance settle


def _import_picamera2() -> Any:
    try:
        from picamera2 import Picamera2
    except ImportError as e:
        raise CameraError(INSTALL_HINT, permanent=True) from e
    return Picamera2


class Picamera2Camera(Camera):
    driver = "picamera2"

    def __init__(self, cfg: CameraSpec) -> None:
        super().__init__(cfg)
        self._Picamera2 = _import_picamera2()
        self._model: str | None = None
        self._wait_s = 0.8 * self.timeout_s  # picamera2's own timeout fires before the base's bound

    def _open_handle(self) -> Any:
        num = self.cfg.camera_num
        try:
            cam = self._Picamera2(num)
        except IndexError:
            found = len(self._Picamera2.global_camera_info())
            raise CameraError(
                f"no Pi camera number {num} ({found} found): check the ribbon cable and `rpicam-hello --list-cameras`"
            ) from None
        except RuntimeError as e:
            raise CameraError(f"Pi camera {num} did not open ({e}): is another program using it?") from None
        try:
            # libcamera names formats by their little-endian words: "BGR888" arrives as R,G,B bytes, as Pillow wants.
            config = cam.create_still_configuration(
                main={"size": (self.cfg.width, self.cfg.height), "format": "BGR888"}, buffer_count=1, queue=False
            )
            cam.configure(config)
            cam.options["quality"] = STILL_QUALITY
            cam.start()
            for _ in range(_SETTLE_FRAMES):
                cam.capture_metadata(wait=self._wait_s)
            self._model = cam.camera_properties.get("Model")
        except BaseException:
            cam.close()
            raise
        return cam

    def _still(self, handle: Any) -> bytes:
        buf = io.BytesIO()
        handle.capture_file(buf, format="jpeg", wait=self._wait_s)
        return buf.getvalue()

    def _preview(self, handle: Any, max_edge: int) -> Image.Image:
        frame = handle.capture_array("main", wait=self._wait_s)
        return Image.fromarray(frame[..., :3])  # XBGR8888 would carry a 4th byte

    def _close_handle(self, handle: Any) -> None:
        try:
            handle.stop()
        finally:
            handle.close()

    def _describe(self) -> str:
        model = f" {self._model}" if self._model else ""
        return f"picamera2 camera {self.cfg.camera_num}{model} {self.cfg.width}x{self.cfg.height}"
