"""``Config``: the whole file, one section per field (see sections.py, network.py, profiles.py)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PrivateAttr

from agent.config.network import HttpConfig, MqttConfig, PlatformConfig
from agent.config.profiles import ProfileConfig
from agent.config.sections import (
    ButtonConfig,
    CameraConfig,
    DeviceConfig,
    DisplayConfig,
    IndicatorsConfig,
    PrinterConfig,
    QueueConfig,
    SyntheticCameraConfig,
    UploadConfig,
)
from agent.schema import _Model


class Config(_Model):
    device: DeviceConfig = Field(default_factory=DeviceConfig, description="this booth: id and folders")
    camera: CameraConfig = Field(default_factory=SyntheticCameraConfig, description="the camera and its driver")
    upload: UploadConfig = Field(default_factory=UploadConfig, description="the photo sent to the platform")
    platforms: dict[str, PlatformConfig] = Field(
        default_factory=dict, description="the AI platforms, by a name profiles refer to"
    )
    profiles: list[ProfileConfig] = Field(
        default_factory=list, description="the AI effects a trigger can ask for; the first is the default"
    )
    buttons: list[ButtonConfig] = Field(default_factory=list, description="GPIO buttons")
    indicators: IndicatorsConfig = Field(default_factory=IndicatorsConfig, description="GPIO status LEDs")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="the MQTT broker connection")
    http: HttpConfig = Field(default_factory=HttpConfig, description="the local HTTP API and kiosk page")
    display: DisplayConfig = Field(default_factory=DisplayConfig, description="how results are shown")
    printer: PrinterConfig = Field(default_factory=PrinterConfig, description="the photo printer")
    queue: QueueConfig = Field(default_factory=QueueConfig, description="deadlines, retries and limits of the queue")

    _source: Path | None = PrivateAttr(None)  # where the config was read from: not a key a file may set

    @property
    def source(self) -> Path | None:
        return self._source

    def profile(self, name: str | None) -> ProfileConfig:
        """The named profile, or the default (first) one."""
        if name is None:
            return self.profiles[0]
        for p in self.profiles:
            if p.name == name:
                return p
        raise KeyError(name)
