"""Cameras behind one small interface, chosen by ``camera.driver`` in the config.

    from hardware.camera import make_camera
    cam = make_camera(CameraSpec(driver="opencv", device="/dev/video0", width=1920, height=1080))
    photo = cam.capture()          # Photo(jpeg, width, height, taken_at), bounded by camera.timeout_s
    frame = cam.preview_jpeg()     # a small JPEG for the live preview
    cam.close()

Drivers live in one module each (synthetic, file, opencv, picamera2) and are imported by name only when chosen,
so a Pi without OpenCV or a laptop without picamera2 only notices when that driver is configured.
"""

from __future__ import annotations

import importlib

from hardware.camera.base import Camera, CameraError, CameraSpec, Photo

__all__ = ["Camera", "CameraError", "CameraSpec", "Photo", "make_camera", "DRIVERS"]

# driver name -> (module in this package, class name)
DRIVERS: dict[str, tuple[str, str]] = {
    "synthetic": ("synthetic", "SyntheticCamera"),
    "file": ("file", "FileCamera"),
    "opencv": ("opencv", "OpenCVCamera"),
    "picamera2": ("picamera2", "Picamera2Camera"),
}


def make_camera(cfg: CameraSpec) -> Camera:
    """The camera for a spec (the agent builds it from `[camera]`). Raises CameraError (e.g. with an install
    hint)."""
    try:
        module_name, class_name = DRIVERS[cfg.driver]
    except KeyError:
        raise CameraError(
            f"unknown camera driver {cfg.driver!r}; expected one of {', '.join(DRIVERS)}", permanent=True
        ) from None
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)(cfg)
