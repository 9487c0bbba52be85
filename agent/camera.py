"""The agent's side of the camera: the plain values a driver gets from `[camera]` (hardware/ knows no config
models, gpiozero's way)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardware.camera.base import CameraSpec

if TYPE_CHECKING:
    from agent.config import CameraConfig


def camera_spec(cfg: CameraConfig) -> CameraSpec:
    return CameraSpec(**cfg.model_dump())
