"""The one camera interface, and the machinery that keeps every driver bounded and thread-safe.

A driver only writes four small hooks: open a handle, take a still, take a preview frame, close the handle.
``Camera`` wraps them so that, whatever the driver does:

- every driver call runs on a helper thread and is waited for at most ``timeout_s``: a call that never comes back
  raises ``CameraError("camera did not answer within 5.0 s ...")`` and the caller moves on. The stuck thread is
  left behind (it is a daemon thread); when it finally returns, its handle is closed, and the next call opens a
  fresh one;
- a driver call that fails drops the handle, so the next call reopens the camera (an unplugged USB camera that
  comes back, a wedged Pi camera stack) instead of failing forever;
- one lock serialises capture, preview, open and close, so a preview stream and a button press can share a camera.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from PIL import Image

log = logging.getLogger(__name__)

STILL_QUALITY = 95  # the photo that is kept; what is uploaded is made from it by agent.steps.prepare

T = TypeVar("T")

# What a driver hands back: a Pillow image (the base fits and encodes it) or a finished JPEG (already sized).
Frame = Image.Image | bytes


class CameraError(Exception):
    """The camera could not deliver. `str(e)` says what to do about it (it is shown to technicians).

    `permanent` means retrying will not help until someone changes something (a missing package, a bad config);
    anything else is worth another try later (a hang, an unplugged camera, a file being copied in). `appears`: a
    permanent fault that ends when this path exists (a device node or a file not there yet), worth watching for.
    """

    def __init__(self, message: str, *, permanent: bool = False, appears: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.appears = appears


@dataclass(frozen=True, slots=True)
class Photo:
    jpeg: bytes = field(repr=False)
    width: int
    height: int
    taken_at: float  # time.time() when the still was asked for; the frame is from then or later


@dataclass(frozen=True)
class CameraSpec:
    """What a camera driver is told (plain values; the agent builds it from its `[camera]` config)."""

    driver: str = "synthetic"  # synthetic | file | opencv | picamera2
    width: int = 1920
    height: int = 1080
    timeout_s: float = 5.0  # a capture that takes longer fails instead of hanging the booth
    device: str | int = 0  # opencv: /dev/videoN, an index, or a video file
    warmup_frames: int = 3  # opencv: frames dropped after opening
    path: Path | None = None  # file: one image or a folder of images
    fourcc: str = "MJPG"  # opencv: pixel format asked of a V4L2 device, set before the size ("" = the default)
    newest_frame: bool = True  # opencv: a reader thread keeps only the newest frame (grabber.py)
    camera_num: int = 0  # picamera2: which camera
    autofocus: str = "continuous"  # picamera2: continuous | on-capture | off (ignored without an AF lens)
    af_timeout_s: float = 2.0  # picamera2: on-capture focus that takes longer is given up (the photo is taken)
    controls: dict[str, Any] = field(default_factory=dict)  # picamera2: libcamera controls, e.g. {"Sharpness": 1.5}
    preview_max_edge: int = 640  # the live preview's longest edge (picamera2: the lores stream's size)


class Camera(ABC):
    """Public API: open() · capture() -> Photo · preview_jpeg() -> bytes · close() · describe() -> str.

    Drivers implement the underscore hooks. They are called one at a time, under the lock, on a helper thread;
    the one exception is closing a handle abandoned by a stuck call, which happens once that call returns.
    """

    driver: ClassVar[str]
    can_hang: ClassVar[bool] = True  # False: the hooks are plain computation (no device), run on the caller's thread

    def __init__(self, cfg: CameraSpec) -> None:
        self.cfg = cfg
        self.timeout_s = float(cfg.timeout_s)
        self._lock = threading.Lock()
        self._handle: Any = None
        self._is_open = False
        self._last_preview: bytes | None = None
        self.abandoned_calls = 0  # driver calls that never came back; each left a thread behind
        self._hooks: _HookThread | None = None  # made on first use; replaced when a call gets stuck in the driver

    # ------------------------------------------------------------------------------------------ driver hooks

    @abstractmethod
    def _open_handle(self) -> Any:
        """Open the device and return whatever the other hooks need. Clean up after yourself on failure."""

    @abstractmethod
    def _still(self, handle: Any) -> Frame:
        """One full-quality photo of *now*. A finished JPEG must already fit the configured size."""

    def _preview(self, handle: Any, max_edge: int) -> Frame:
        """A frame for the live preview; the base shrinks and encodes it. Default: a still."""
        return self._still(handle)

    def _close_handle(self, handle: Any) -> None:  # noqa: B027 - an optional hook: most drivers need nothing
        """Release the device. Called at most once per handle, never while another hook uses it."""

    def _problem(self, handle: Any) -> str | None:
        """What a background part of the driver noticed (a reader thread lost its source). Must not block."""
        return None

    @abstractmethod
    def _describe(self) -> str:
        """`driver source WxH`, for logs and `doctor`."""

    # ------------------------------------------------------------------------------------------ public API

    def open(self) -> None:
        """Open the camera now (capture and preview open it on demand too). Idempotent."""
        with self._locked():
            self._ensure_open()

    def capture(self) -> Photo:
        with self._locked():
            self._ensure_open()
            taken_at = time.time()
            frame = self._call("capture", self._still, self._handle)
        if isinstance(frame, bytes):
            width, height = jpeg_size(frame)
            return Photo(frame, width, height, taken_at)
        frame = fit_image(to_rgb(frame), self.cfg.width, self.cfg.height)
        return Photo(encode_jpeg(frame, STILL_QUALITY), frame.width, frame.height, taken_at)

    def preview_jpeg(
        self, max_edge: int = 640, quality: int = 70, transform: Callable[[Image.Image], Image.Image] | None = None
    ) -> bytes:
        """A small JPEG for a live preview. While a capture holds the camera, the last preview frame is reused.
        `transform` (e.g. a selfie mirror) is applied to the small image before it is encoded."""
        if self._last_preview is not None:
            if not self._lock.acquire(blocking=False):
                return self._last_preview
        elif not self._lock.acquire(timeout=self._lock_wait_s):
            raise CameraError(f"camera busy for more than {self._lock_wait_s} s ({self.describe()})")
        try:
            self._ensure_open()
            frame = self._call("preview", self._preview, self._handle, max_edge)
        finally:
            self._lock.release()
        self._last_preview = small_jpeg(frame, max_edge, quality, transform)
        return self._last_preview

    def close(self) -> None:
        """Release the device. The camera can be used again afterwards (it reopens on demand)."""
        if not self._lock.acquire(timeout=self._lock_wait_s):
            log.warning("camera %s: still busy, not closed", self.describe())
            return
        try:
            if self._is_open:
                handle, self._handle, self._is_open = self._handle, None, False
                self._close_quietly(handle)
            if self._hooks is not None:  # a closed camera keeps no thread (it makes one if used again)
                self._hooks.retire()
                self._hooks = None
        finally:
            self._lock.release()

    def describe(self) -> str:
        return self._describe()

    def problem(self) -> str | None:
        """A fault seen while idle (e.g. the webcam was unplugged), without touching the device; None if fine."""
        handle = self._handle if self._is_open else None
        return None if handle is None else self._problem(handle)

    def __enter__(self) -> Camera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    # ------------------------------------------------------------------------------------------ machinery

    def _budget(self, what: str) -> float:
        """How long one hook call may take (a driver may allow a capture more, e.g. to focus first)."""
        return self.timeout_s

    @property
    def _lock_wait_s(self) -> float:
        # The holder runs at most a close, an open and a still, each bounded by timeout_s.
        return 3 * self.timeout_s

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if not self._lock.acquire(timeout=self._lock_wait_s):
            raise CameraError(f"camera busy for more than {self._lock_wait_s} s ({self.describe()})")
        try:
            yield
        finally:
            self._lock.release()

    def _ensure_open(self) -> None:
        if not self._is_open:
            self._handle = self._call("open", self._open_handle)
            self._is_open = True

    def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """Run one driver hook on the camera's hook thread, waiting at most timeout_s for it."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                box["value"] = fn(*args)
            except BaseException as e:
                box["error"] = e
            finally:
                done.set()

        if not self.can_hang:
            run()  # nothing to wait for: a thread hand-off would only add its latency
        else:
            self._run_guarded(run, done, box, what)
        err = box.get("error")
        if err is None:
            return box["value"]
        if what != "open":
            self._drop_handle()  # whatever went wrong, start from a fresh handle next time
        if isinstance(err, CameraError):
            raise err
        if isinstance(err, TimeoutError):  # a driver's own bounded wait (picamera2 wait=...) ran out
            raise CameraError(f"camera did not answer within {self.timeout_s} s ({what}, {self.describe()})")
        raise CameraError(f"camera {what} failed ({self.describe()}): {type(err).__name__}: {err}") from err

    def _run_guarded(self, run: Callable[[], None], done: threading.Event, box: dict[str, Any], what: str) -> None:
        """Run on the hook thread, waiting at most the call's budget; a stuck call is abandoned (CameraError)."""
        if self._hooks is None:
            self._hooks = _HookThread(f"camera-{self.driver}")
        hooks = self._hooks
        hooks.run(run)
        if not done.wait(self._budget(what)):
            self._hooks = None  # that thread is stuck in the driver: the next call gets a fresh one
            hooks.retire()
            self._abandon(done, box, what)
            raise CameraError(f"camera did not answer within {self.timeout_s} s ({what}, {self.describe()})")

    def _abandon(self, done: threading.Event, box: dict[str, Any], what: str) -> None:
        """A hook never came back: forget its handle now, close it once (if ever) the stuck call returns."""
        self.abandoned_calls += 1
        old = self._handle if self._is_open else None
        self._handle, self._is_open = None, False
        log.error(
            "camera %s: %s did not answer within %s s; reopening next time (%d stuck call(s) so far)",
            self.describe(),
            what,
            self.timeout_s,
            self.abandoned_calls,
        )

        def reap() -> None:
            done.wait()
            handle = box.get("value") if what == "open" else old
            if handle is not None:
                try:
                    self._close_handle(handle)
                except Exception as e:
                    log.warning("camera %s: closing a stuck handle failed: %s", self.describe(), e)

        threading.Thread(target=reap, name="camera-reaper", daemon=True).start()

    def _drop_handle(self) -> None:
        if self._is_open:
            handle, self._handle, self._is_open = self._handle, None, False
            self._close_quietly(handle)

    def _close_quietly(self, handle: Any) -> None:
        """Close a handle, waiting at most timeout_s; failures are logged, never raised."""
        try:
            self._call("close", self._close_handle, handle)
        except CameraError as e:
            log.warning("camera %s: close: %s", self.describe(), e)


class _HookThread:
    """One long-lived thread that runs the driver's hooks, one at a time: a thread per call (a preview frame is
    one, 8-15 times a second) would cost a thread start each, and a Pi Zero has little to spare. A thread stuck in
    the driver is retired: it ends when (if ever) that call returns, and the camera starts another."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name=name, daemon=True).start()

    def run(self, fn: Callable[[], None]) -> None:
        self._jobs.put(fn)

    def retire(self) -> None:
        self._jobs.put(None)

    def _serve(self) -> None:
        while (fn := self._jobs.get()) is not None:
            fn()
            del fn  # the call's closure holds its frame (a 1920x1080 still is 8 MB): not while waiting for the next


# --------------------------------------------------------------------------------------------- image helpers


def fit_within(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The size that fits the box in either orientation (long edge <= long side), never larger than the input.

    A portrait photo in a 1920x1080 box becomes at most 1080x1920, not 608x1080.
    """
    long_box, short_box = max(box_w, box_h), min(box_w, box_h)
    scale = min(1.0, long_box / max(width, height), short_box / min(width, height))
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_image(im: Image.Image, box_w: int, box_h: int) -> Image.Image:
    size = fit_within(im.width, im.height, box_w, box_h)
    return im if size == im.size else im.resize(size, Image.Resampling.LANCZOS)


def to_rgb(im: Image.Image) -> Image.Image:
    """RGB, with transparent areas on white (a plain convert would turn them black)."""
    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return im.convert("RGB")


def encode_jpeg(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from the header, without decoding."""
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def small_jpeg(
    frame: Frame, max_edge: int, quality: int, transform: Callable[[Image.Image], Image.Image] | None = None
) -> bytes:
    """Shrink a frame to max_edge and encode it (JPEG input is DCT-scaled while decoding, which is cheap)."""
    if isinstance(frame, bytes):
        with Image.open(io.BytesIO(frame)) as src:
            src.draft("RGB", (max_edge, max_edge))
            im = to_rgb(src)
            im.thumbnail((max_edge, max_edge), Image.Resampling.BILINEAR)
            im.load()  # decoded before the source closes
    else:
        im = to_rgb(frame)
        if max(im.size) > max_edge:
            im = im.copy() if im is frame else im
            im.thumbnail((max_edge, max_edge), Image.Resampling.BILINEAR)
    if transform is not None:
        im = transform(im)
    return encode_jpeg(im, quality)
