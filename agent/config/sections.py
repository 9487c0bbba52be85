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
    retry_base_s: float = Field(1.0, gt=0, le=60, description="first wait before re-opening a failed camera")
    retry_max_s: float = Field(30.0, gt=0, le=3600, description="longest wait between re-opening attempts")
    preview_fps: float = Field(10.0, gt=0, le=30, description="live preview frames a second at most (one producer)")
    preview_max_edge: int = Field(640, ge=64, le=1920, description="longest edge of the live preview, in pixels")
    preview_quality: int = Field(70, ge=10, le=95, description="JPEG quality of the live preview")


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
    fourcc: str = Field(
        "MJPG",
        pattern=r"^([ -~]{4})?$",
        description='pixel format asked of a V4L2 webcam, set before the size ("" = any)',
    )
    newest_frame: bool = Field(
        True, description="a reader thread keeps only the newest frame (a still is never an old buffered one)"
    )


class Picamera2CameraConfig(_CameraBase):
    driver: Literal["picamera2"] = Field(description="a Raspberry Pi camera module")
    camera_num: int = Field(0, ge=0, le=7, description="which camera connector")
    autofocus: Literal["continuous", "on-capture", "off"] = Field(
        "continuous", description="continuous | on-capture (one focus cycle before each still) | off"
    )
    af_timeout_s: float = Field(
        2.0, gt=0, le=10, description="on-capture focus taking longer is given up (photo taken)"
    )
    controls: dict[str, float | int | bool] = Field(
        default_factory=dict, description="libcamera controls for preview and still, e.g. { Sharpness = 1.5 }"
    )


CameraConfig = Annotated[
    SyntheticCameraConfig | FileCameraConfig | OpenCVCameraConfig | Picamera2CameraConfig,
    Field(discriminator="driver"),
]


class UploadConfig(_Model):
    max_edge: int = Field(2048, ge=64, le=8192, description="longest edge of the uploaded JPEG")
    jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality of the upload (the capture is kept)")
    rotate: Literal[0, 90, 180, 270] = Field(
        0, description="turn clockwise by this many degrees (a camera mounted sideways); upload and preview"
    )
    mirror: bool = Field(False, description="flip left-right what is sent")
    preview_mirror: bool = Field(True, description="flip left-right what the guest sees live (a selfie mirror)")
    crop_aspect: str | None = Field(
        None, pattern=r"^[1-9][0-9]{0,2}:[1-9][0-9]{0,2}$", description='centre-crop to this width:height, e.g. "3:4"'
    )


# --------------------------------------------------------------------------------------------- GPIO


class ButtonConfig(_Model):
    pin: int = Field(description="BCM pin number the button is wired to")
    action: ButtonAction = Field("capture", description="what a press does: capture | cancel | print | retry")
    profile: str | None = Field(None, description="the profile a capture uses; default: the first profile")
    choice: str | None = Field(None, description="one of that profile's choices, by id (a garment, a style)")
    hold_action: ButtonAction | None = Field(None, description="what holding it for hold_time_s does instead")
    hold_profile: str | None = Field(None, description="the profile a hold capture uses")
    hold_choice: str | None = Field(None, description="the choice a hold capture uses, by id")
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


Media = Literal["4x6in", "10x15cm", "2x6in", "A6"]


class PrintOverlayConfig(_Model):
    frame: Path | None = Field(
        None, description="a PNG laid over the whole page (its transparent parts show the photo)"
    )
    logo: Path | None = Field(None, description="a PNG placed in the top right corner, a fifth of the page wide")
    text: str = Field("", max_length=120, description='event text printed along the bottom, e.g. "Anna & Ben 2026"')
    date_format: str = Field("", max_length=40, description="strftime format of the date after the text; empty: none")
    font: Path | None = Field(None, description="a TrueType font for the text (needed for Chinese); default: built in")

    @field_validator("frame", "logo", "font")
    @classmethod
    def _exists(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"no such file: {v}")
        return v


class PrinterConfig(_Model):
    enabled: bool = Field(False, description="allow printing results")
    queue: str = Field("booth", pattern=r"^[^\s/#]{1,127}$", description="CUPS queue name (lpstat -p)")
    auto_print: bool = Field(False, description="print every finished photo once, as soon as it is done")
    media: Media | None = Field(
        None, description="paper: 4x6in | 10x15cm | 2x6in | A6; default: the queue's own default"
    )
    lp_timeout_s: float = Field(
        60.0, ge=1, le=600, description="how long `lp` may take to accept a print (a busy Pi, a large page)"
    )
    dpi: int | None = Field(
        None, ge=72, le=600, description="render resolution; default: the queue's, at most 300 (memory on a Pi)"
    )
    margin_mm: float = Field(0.0, ge=0, le=30, description="white border around the photo; 0 = borderless")
    fit: Literal["fill", "fit"] = Field(
        "fill", description="fill: cover the page, cropping the edges | fit: whole photo, blank bands where it differs"
    )
    copies: int = Field(1, ge=1, le=10, description="copies of a print when the request does not say")
    max_copies: int = Field(2, ge=1, le=50, description="most copies one print may ask for")
    max_prints_per_job: int = Field(2, ge=0, le=1000, description="sheets one job may print in all; 0 = no limit")
    max_prints_per_event: int = Field(
        0, ge=0, description="sheets until an operator resets the count (edge-agent printer reset-count); 0 = no limit"
    )
    cooldown_s: float = Field(
        3.0, ge=0, le=3600, description="a print asked for sooner than this after the last one is refused"
    )
    auto_resume: bool = Field(False, description="re-enable the queue when CUPS stops it (e.g. a lost USB link)")
    auto_resume_delay_s: float = Field(
        30.0, ge=1, le=3600, description="how long a stopped queue waits before auto_resume"
    )
    auto_resume_max: int = Field(3, ge=1, le=100, description="auto_resume tries in a row without a print finishing")
    poll_interval_s: float = Field(2.0, gt=0, le=60, description="how often the printer and open prints are looked at")
    overlay: PrintOverlayConfig = Field(
        default_factory=PrintOverlayConfig, description="frame, logo and text on the print"
    )


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
    keep_days: float = Field(
        30, ge=0, description="finished jobs (photo and results) are deleted after this many days (0: kept for ever)"
    )
    keep_results_gb: float = Field(
        0, ge=0, description="finished jobs beyond this much disk, oldest first, are deleted (0: no limit)"
    )
