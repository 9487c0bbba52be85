"""The booth's own sections: device, camera, upload, buttons, indicators, display, printer, queue.

Every field has its default next to it and a one-line ``description`` (``edge-agent config reference`` prints them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from agent.schema import _Model

ButtonAction = Literal["capture", "cancel", "print", "retry"]


class DeviceConfig(_Model):
    id: str = Field("booth-01", pattern=r"^[a-z0-9_-]+$", description="this booth's name in MQTT topics and file names")
    state_dir: Path = Field(Path("/var/lib/edge-agent"), description="queue database and spooled captures")
    output_dir: Path | None = Field(None, description="results (<day>/<job_id>/...); default: <state_dir>/results")

    @property
    def results_dir(self) -> Path:
        return self.output_dir if self.output_dir is not None else self.state_dir / "results"


# --------------------------------------------------------------------------------------------- camera


class _CameraBase(_Model):
    width: int = Field(1920, ge=16, le=8192, description="still width asked of the camera, in pixels")
    height: int = Field(1080, ge=16, le=8192, description="still height asked of the camera, in pixels")
    timeout_s: float = Field(5.0, gt=0, le=60, description="a capture that takes longer fails, never hangs")


class SyntheticCameraConfig(_CameraBase):
    driver: Literal["synthetic"] = Field("synthetic", description="a generated, changing test scene")


class FileCameraConfig(_CameraBase):
    driver: Literal["file"] = Field(description="images from disk instead of a camera")
    path: Path = Field(description="one image, or a folder of images taken in name order, round-robin")

    @field_validator("path")
    @classmethod
    def _exists(cls, v: Path) -> Path:
        if not v.exists():
            raise ValueError(f"no such file or folder: {v}")
        return v


class OpenCVCameraConfig(_CameraBase):
    driver: Literal["opencv"] = Field(description="a USB webcam (or a video file) through OpenCV")
    device: str | int = Field(0, description="/dev/videoN, a camera index, or a video file (tests, demos)")
    warmup_frames: int = Field(3, ge=0, le=60, description="frames dropped after opening (auto exposure)")


class Picamera2CameraConfig(_CameraBase):
    driver: Literal["picamera2"] = Field(description="a Raspberry Pi camera module")
    camera_num: int = Field(0, ge=0, le=7, description="which camera connector")


CameraConfig = Annotated[
    SyntheticCameraConfig | FileCameraConfig | OpenCVCameraConfig | Picamera2CameraConfig,
    Field(discriminator="driver"),
]


class UploadConfig(_Model):
    max_edge: int = Field(2048, ge=64, le=8192, description="longest edge of the uploaded JPEG")
    jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality of the upload (the capture is kept)")


# --------------------------------------------------------------------------------------------- GPIO


class ButtonConfig(_Model):
    pin: int = Field(description="BCM pin number the button is wired to")
    action: ButtonAction = Field("capture", description="what a press does: capture | cancel | print | retry")
    profile: str | None = Field(None, description="the profile a capture uses; default: the first profile")
    hold_action: ButtonAction | None = Field(None, description="what holding it for hold_time_s does instead")
    hold_profile: str | None = Field(None, description="the profile a hold capture uses")
    hold_time_s: float = Field(2.0, gt=0, le=30, description="how long a press must last to count as a hold")
    bounce_time_s: float = Field(0.05, ge=0, le=1, description="contact bounce shorter than this is ignored")
    pull_up: bool = Field(True, description="true: the button connects the pin to ground")


class IndicatorsConfig(_Model):
    ready_led: int | None = Field(None, description="BCM pin of the LED lit when the booth is ready")
    busy_led: int | None = Field(None, description="BCM pin of the LED that blinks while the AI works")
    error_led: int | None = Field(None, description="BCM pin of the LED lit on an error that needs a technician")


# --------------------------------------------------------------------------------------------- output


class DisplayConfig(_Model):
    """The kiosk page (agent/kiosk): what a guest sees and for how long."""

    backend: Literal["web", "none"] = Field(
        "web", description="web: the kiosk page at GET / (edge-agent kiosk shows it) | none: no page"
    )
    language: Literal["zh-CN", "en"] = Field("en", description="the page's language at the start of each guest")
    language_switch: bool = Field(True, description="show a button that switches the language on screen")
    countdown_s: int = Field(3, ge=0, le=10, description="seconds of countdown over the live preview before the photo")
    idle_timeout_s: float = Field(
        45, ge=5, le=3600, description="choose/consent screens untouched this long go back to the attract screen"
    )
    waiting_timeout_s: float = Field(
        600, ge=10, le=86400, description="a waiting screen left this long goes back to attract (the job goes on)"
    )
    result_timeout_s: float = Field(
        60, ge=5, le=3600, description="a result on screen untouched this long goes back to the attract screen"
    )
    attract_slideshow: bool = Field(
        False, description="show recent results on the attract screen (other guests' pictures: off by default)"
    )
    attract_slide_s: float = Field(6, ge=1, le=120, description="seconds each slideshow picture stays")
    attract_count: int = Field(12, ge=1, le=100, description="how many recent results the slideshow cycles through")
    consent: bool = Field(False, description="ask 'your photo is sent to an AI service' before the countdown")
    share: bool = Field(True, description="show a QR code to a per-job page for the guest's phone")
    share_expiry_h: float = Field(
        72, gt=0, le=24 * 365, description="hours after capture that a job's share page (/share/<token>) works"
    )
    texts: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='override any page text per language, e.g. texts.en = { "attract.title" = "Hello" }',
    )

    @field_validator("texts", mode="before")
    @classmethod
    def _texts(cls, v: object) -> object:
        from agent.kiosk.i18n import check_overrides

        return check_overrides(v)


class PrinterConfig(_Model):
    enabled: bool = Field(False, description="allow printing results")
    queue: str = Field("booth", description="CUPS queue name (lpstat -p)")
    auto_print: bool = Field(False, description="print every finished photo (accepted, not acted on yet)")


class QueueConfig(_Model):
    task_deadline_s: float = Field(1800, ge=1, description="give up polling a submitted task after this")
    min_free_disk_mb: int = Field(200, ge=0, description="below this, new captures are refused")
    max_in_flight: int = Field(4, ge=1, le=64, description="tasks on the platforms at once (downloads excluded)")
    retry_base_s: float = Field(2.0, gt=0, le=600, description="first transient-error backoff (full jitter)")
    retry_cap_s: float = Field(300.0, gt=0, le=86400, description="longest transient-error backoff")
    probe_interval_s: float = Field(5.0, gt=0, le=600, description="how often an unreachable platform is probed")
    max_jobs: int = Field(
        500, ge=1, le=1_000_000, description="unfinished jobs at most; when full, remote captures are refused"
    )
    max_bytes_mb: int = Field(
        1024, ge=1, description="photos of unfinished jobs at most (MB); when full, remote captures are refused"
    )
    remote_rate_per_min: int = Field(
        30, ge=1, le=6000, description="remote captures (MQTT, fleet, HTTP) accepted per minute, per source"
    )
    max_result_mb: int = Field(200, ge=1, le=100_000, description="what one job's outputs may take on disk in all (MB)")
    remote_ttl_s: float | None = Field(
        None, gt=0, description="a remote capture not yet sent after this long is expired (none: kept)"
    )
