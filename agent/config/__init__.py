"""The one config model and the one place that reads it.

A TOML file is parsed into pydantic models; every problem is reported as ``PATH: key.path: message``.

Layout: sections.py (device, camera, upload, buttons, indicators, display, printer, queue), network.py
(platforms, mqtt, http), profiles.py (``ProfileConfig``: a union on ``endpoint`` built from the platform mode
registry), model.py (``Config``), paths.py (relative paths), secrets.py, checks.py (cross-field rules),
errors.py (wording), loader.py (``load_config``).
"""

from __future__ import annotations

from agent.config.errors import ConfigError, ConfigIssue
from agent.config.loader import DEFAULT_CONFIG_PATH, LoadedConfig, config_path_from_env, load_config, parse_config
from agent.config.model import Config
from agent.config.network import EasyAIPlatformConfig, HaiyiPlatformConfig, HttpConfig, MqttConfig, PlatformConfig
from agent.config.profiles import ProfileConfig, ThirdPartyModel, make_profile
from agent.config.secrets import Secrets
from agent.config.sections import (
    ButtonConfig,
    CameraConfig,
    DeviceConfig,
    DisplayConfig,
    FileCameraConfig,
    IndicatorsConfig,
    OpenCVCameraConfig,
    Picamera2CameraConfig,
    PrinterConfig,
    QueueConfig,
    SyntheticCameraConfig,
    UploadConfig,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ButtonConfig",
    "CameraConfig",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "DeviceConfig",
    "DisplayConfig",
    "EasyAIPlatformConfig",
    "FileCameraConfig",
    "HaiyiPlatformConfig",
    "HttpConfig",
    "IndicatorsConfig",
    "LoadedConfig",
    "MqttConfig",
    "OpenCVCameraConfig",
    "Picamera2CameraConfig",
    "PlatformConfig",
    "PrinterConfig",
    "ProfileConfig",
    "QueueConfig",
    "Secrets",
    "SyntheticCameraConfig",
    "ThirdPartyModel",
    "UploadConfig",
    "config_path_from_env",
    "load_config",
    "make_profile",
    "parse_config",
]
