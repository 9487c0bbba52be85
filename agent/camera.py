"""The agent's side of the camera: the plain values a driver gets from `[camera]` (hardware/ knows no config
models, gpiozero's way), and the supervised service built from them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hardware.camera.base import CameraSpec

if TYPE_CHECKING:
    from agent.camera_service import CameraService
    from agent.config import CameraConfig, Config

_SPEC_FIELDS = {f.name for f in dataclasses.fields(CameraSpec)}


def camera_spec(cfg: CameraConfig) -> CameraSpec:
    return CameraSpec(**{k: v for k, v in cfg.model_dump().items() if k in _SPEC_FIELDS})


def camera_service(
    config: Config, camera: Any = None, on_change: Callable[[dict], object] | None = None
) -> CameraService:
    """The service for `[camera]` (or around a given camera object, for tests and `demo`)."""
    from agent.camera_service import CameraService
    from agent.steps.prepare import Orientation
    from hardware.camera import make_camera

    cam_cfg = config.camera
    up = config.upload
    view = Orientation.of(up.rotate, up.preview_mirror, up.crop_aspect)
    return CameraService(
        (lambda: camera) if camera is not None else (lambda: make_camera(camera_spec(cam_cfg))),
        on_change=on_change,
        retry_base_s=cam_cfg.retry_base_s,
        retry_max_s=cam_cfg.retry_max_s,
        preview_fps=cam_cfg.preview_fps,
        preview_max_edge=cam_cfg.preview_max_edge,
        preview_quality=cam_cfg.preview_quality,
        preview_transform=None if view.identity else view.apply,
    )
