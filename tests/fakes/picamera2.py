"""A stand-in for the Raspberry Pi `picamera2` package, the one fake in this project (the Pi camera stack cannot
exist on a test machine). Tests put it in `sys.modules["picamera2"]` (and `allocators` in
`sys.modules["picamera2.allocators"]`, or None there to play a picamera2 older than PersistentAllocator).

It keeps the documented names, signatures and meanings the driver relies on: `Picamera2(camera_num, allocator=)`,
`create_preview_configuration(main, lores, ...)` / `create_still_configuration(...)` (with `controls`),
`configure`, `start`, `stop`, `close`, `capture_metadata` / `capture_array(name)` / `capture_file` /
`capture_request` (a CompletedRequest with `get_metadata`, `make_array`, `save`, `release`),
`switch_mode_capture_request_and_stop(config, wait=)`, `set_controls`, `autofocus_cycle(wait=)`,
`camera_controls` (AfMode only on a lens that focuses), `options`, `camera_properties`, `global_camera_info`.
`wait=` is a number of seconds after which a call raises TimeoutError; `SensorTimestamp` is the start of the
exposure in nanoseconds of CLOCK_BOOTTIME (libcamera's definition); a `lores` stream in YUV420 comes back as an
I420 array of shape (h * 3 / 2, w).

Knobs for tests (module state; `reset()` between tests):
- `cameras`: what `global_camera_info()` reports; `Picamera2(n)` raises IndexError past its end, like the real one.
- `wedged`: while set, capture calls block and ignore `wait` (a wedged camera stack) until `unwedge` is set.
- `frame_delay_s`: how long each frame takes; a `wait` shorter than that raises TimeoutError, as the real one does.
- `fail_alloc_after`: buffer allocations an instance survives; the next raises "Failed to allocate buffers"
  (CMA fragmentation after mode switches). A PersistentAllocator allocates once per configuration, so it never
  gets there.
- `timeout_after_frames`: frames an instance delivers before every capture times out ("Camera frontend has timed
  out"), until the camera is closed and opened again.
- `stale_after_start`: frames after each start whose SensorTimestamp is older than the start (a buffer from before).
- `has_autofocus`; `af_never_returns`: autofocus_cycle never completes (raises TimeoutError after `wait`).
- `instances`: every Picamera2 made, to check that a stuck one was closed and a fresh one opened.
"""

from __future__ import annotations

import threading
import time
import types
from typing import Any

import numpy as np
from PIL import Image

cameras: list[dict[str, Any]] = []
wedged = threading.Event()
unwedge = threading.Event()
instances: list[Picamera2] = []
frame_delay_s = 0.0
fail_alloc_after: int | None = None
timeout_after_frames: int | None = None
stale_after_start = 0
has_autofocus = False
af_never_returns = False
_NOW = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


def reset() -> None:
    global frame_delay_s, fail_alloc_after, timeout_after_frames, stale_after_start, has_autofocus, af_never_returns
    frame_delay_s = 0.0
    fail_alloc_after = timeout_after_frames = None
    stale_after_start = 0
    has_autofocus = af_never_returns = False
    cameras[:] = [
        {"Model": "imx477", "Location": 2, "Rotation": 180, "Id": "/base/soc/i2c0mux/i2c@1/imx477@1a", "Num": 0}
    ]
    wedged.clear()
    unwedge.clear()
    instances.clear()


class PersistentAllocator:
    """Allocates a configuration's buffers once and keeps them across configure() calls."""

    def __init__(self) -> None:
        self.kept: set[str] = set()


allocators = types.ModuleType("picamera2.allocators")
allocators.PersistentAllocator = PersistentAllocator  # type: ignore[attr-defined]


def _config_key(config: dict) -> str:
    return repr((config["use_case"], config["main"].get("size"), (config.get("lores") or {}).get("size")))


class CompletedRequest:
    def __init__(self, cam: Picamera2, metadata: dict, frame_no: int) -> None:
        self._cam = cam
        self._metadata = metadata
        self._frame_no = frame_no
        self._config = cam.camera_config
        self.released = False
        cam.outstanding.add(self)

    def get_metadata(self) -> dict:
        return dict(self._metadata)

    def make_array(self, name: str = "main") -> np.ndarray:
        if self.released:
            raise RuntimeError("request already released")
        return self._cam._render(self._config, name, self._frame_no)

    def make_image(self, name: str = "main") -> Image.Image:
        return Image.fromarray(self.make_array(name))

    def save(self, name: str, file_output: Any, format: str | None = None, exif_data: Any = None) -> None:
        quality = self._cam.options.get("quality", 90)
        self.make_image(name).save(file_output, format=format or "jpeg", quality=quality)

    def release(self) -> None:
        self.released = True
        self._cam.outstanding.discard(self)


class Picamera2:
    def __init__(
        self, camera_num: int = 0, verbose_console: Any = None, tuning: Any = None, allocator: Any = None
    ) -> None:
        info = self.global_camera_info()[camera_num]  # IndexError for a camera that is not there
        self.camera_num = info["Num"]
        self.camera_properties = {"Model": info["Model"], "PixelArraySize": (4056, 3040)}
        self.sensor_resolution = (4056, 3040)
        self.camera_controls: dict[str, tuple] = {"ExposureTime": (1, 1000000, None), "Sharpness": (0.0, 16.0, 1.0)}
        if has_autofocus:
            self.camera_controls |= {"AfMode": (0, 2, 0), "AfTrigger": (0, 1, 0), "LensPosition": (0.0, 15.0, 1.0)}
        self.allocator = allocator
        self.options: dict[str, Any] = {}
        self.camera_config: dict[str, Any] | None = None
        self.controls: dict[str, Any] = {}
        self.started = False
        self.is_open = True
        self.frames = 0
        self.allocations = 0
        self.switches = 0
        self.outstanding: set[CompletedRequest] = set()
        self.calls: list[str] = []
        self._since_start = 0
        self._started_ns = 0
        instances.append(self)

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        return [dict(c) for c in cameras]

    # ---------------------------------------------------------------------------------------- configuration

    def _configuration(
        self,
        use_case: str,
        main: dict | None,
        lores: dict | None,
        controls: dict | None,
        buffer_count: int,
        queue: bool,
        fmt: str,
        size: tuple[int, int],
        **_: Any,
    ) -> dict:
        stream = {"format": fmt, "size": size, "preserve_ar": True} | dict(main or {})
        if lores is not None:
            lores = {"format": "YUV420"} | dict(lores)
            lw, lh = lores["size"]
            mw, mh = stream["size"]
            if lw > mw or lh > mh:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
        return {
            "use_case": use_case,
            "buffer_count": buffer_count,
            "queue": queue,
            "main": stream,
            "lores": lores,
            "controls": dict(controls or {}),
        }

    def create_preview_configuration(
        self,
        main: dict | None = None,
        lores: dict | None = None,
        raw: Any = None,
        transform: Any = None,
        colour_space: Any = None,
        buffer_count: int = 4,
        controls: dict | None = None,
        display: str | None = "main",
        encode: str | None = "main",
        queue: bool = True,
        sensor: Any = None,
        use_case: str = "preview",
    ) -> dict:
        return self._configuration(use_case, main, lores, controls, buffer_count, queue, "XBGR8888", (640, 480))

    def create_still_configuration(
        self,
        main: dict | None = None,
        lores: dict | None = None,
        raw: Any = None,
        transform: Any = None,
        colour_space: Any = None,
        buffer_count: int = 1,
        controls: dict | None = None,
        display: str | None = None,
        encode: str | None = None,
        queue: bool = True,
        sensor: Any = None,
        use_case: str = "still",
    ) -> dict:
        return self._configuration(
            use_case, main, lores, controls, buffer_count, queue, "BGR888", self.sensor_resolution
        )

    def configure(self, camera_config: dict) -> None:
        self._need_open()
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        self.calls.append("configure")
        key = _config_key(camera_config)
        if not (isinstance(self.allocator, PersistentAllocator) and key in self.allocator.kept):
            if fail_alloc_after is not None and self.allocations >= fail_alloc_after:
                raise RuntimeError("Failed to allocate buffers.")
            self.allocations += 1
            if isinstance(self.allocator, PersistentAllocator):
                self.allocator.kept.add(key)
        if self.camera_config is not None and _config_key(self.camera_config) != key:
            self.switches += 1
        self.camera_config = camera_config
        self.controls |= camera_config["controls"]

    def start(self, config: dict | None = None, show_preview: bool | None = False) -> None:
        self._need_open()
        if config is not None:
            self.configure(config)
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        self.calls.append("start")
        self.started = True
        self._since_start = 0
        self._started_ns = time.clock_gettime_ns(_NOW)

    def stop(self) -> None:
        self.calls.append("stop")
        self.started = False

    def close(self) -> None:
        self.calls.append("close")
        self.started = False
        self.is_open = False

    def set_controls(self, controls: dict) -> None:
        self._need_open()
        self.calls.append("set_controls")
        self.controls |= dict(controls)

    def autofocus_cycle(self, wait: Any = None) -> bool:
        self._need_open()
        if "AfMode" not in self.camera_controls:
            raise RuntimeError("Control AfMode is not advertised by libcamera")
        self.calls.append("autofocus_cycle")
        if af_never_returns:
            if wait is None:
                unwedge.wait()
            else:
                time.sleep(wait)
            raise TimeoutError()
        time.sleep(0.02)
        return True

    # ---------------------------------------------------------------------------------------- captures

    def capture_metadata(self, wait: Any = None, signal_function: Any = None) -> dict:
        return self._next_frame(wait)[1]

    def capture_request(self, wait: Any = None, signal_function: Any = None, flush: Any = None) -> CompletedRequest:
        n, meta = self._next_frame(wait)
        return CompletedRequest(self, meta, n)

    def capture_array(self, name: str = "main", wait: Any = None, signal_function: Any = None) -> np.ndarray:
        n, _ = self._next_frame(wait)
        return self._render(self.camera_config, name, n)

    def capture_file(
        self,
        file_output: Any,
        name: str = "main",
        format: str | None = None,
        wait: Any = None,
        signal_function: Any = None,
        exif_data: dict | None = None,
    ) -> dict:
        n, meta = self._next_frame(wait)
        img = Image.fromarray(self._render(self.camera_config, name, n))
        img.save(file_output, format=format or "jpeg", quality=self.options.get("quality", 90))
        return meta

    def switch_mode_capture_request_and_stop(
        self, camera_config: dict, wait: Any = None, signal_function: Any = None
    ) -> CompletedRequest:
        self.stop()
        self.configure(camera_config)
        self.start()
        try:
            return self.capture_request(wait=wait)
        finally:
            self.stop()

    def _render(self, config: dict | None, name: str, n: int) -> np.ndarray:
        """The frame number as a colour: R = n*40, G = 128, B = 255 - n*40 (mod 256)."""
        stream = (config or {}).get(name)
        if stream is None:
            raise RuntimeError(f"no {name} stream configured")
        w, h = stream["size"]
        r, g, b = (n * 40) % 256, 128, 255 - (n * 40) % 256
        if stream["format"] == "YUV420":
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u, v = 128 + (b - y) / 1.772, 128 + (r - y) / 1.402
            out = np.empty((h * 3 // 2, w), dtype=np.uint8)
            out[:h] = round(y)
            out[h : h + h // 4] = round(u)
            out[h + h // 4 :] = round(v)
            return out
        frame = np.empty((h, w, 4 if stream["format"].startswith("X") else 3), dtype=np.uint8)
        frame[..., :3] = (r, g, b)  # "BGR888"/"XBGR8888" are R, G, B in memory (libcamera's little-endian names)
        if frame.shape[2] == 4:
            frame[..., 3] = 255
        return frame

    def _next_frame(self, wait: Any) -> tuple[int, dict]:
        self._need_open()
        if not self.started:
            raise RuntimeError("Camera not started")  # the real one would wait forever; fail loudly instead
        self.calls.append("capture")
        limit = wait if isinstance(wait, (int, float)) and not isinstance(wait, bool) else None
        if wedged.is_set():
            unwedge.wait()  # ignores `wait`: the stack is stuck below the Python layer
        if timeout_after_frames is not None and self.frames >= timeout_after_frames:
            if limit is None:
                unwedge.wait()
            else:
                time.sleep(limit)
            raise TimeoutError()
        if frame_delay_s:
            if limit is not None and limit < frame_delay_s:
                time.sleep(limit)
                raise TimeoutError()
            time.sleep(frame_delay_s)
        self.frames += 1
        self._since_start += 1
        # a 10 ms exposure that ended just now, begun after the start (a sensor exposes nothing while stopped)
        exposed = max(time.clock_gettime_ns(_NOW) - 10_000_000, self._started_ns + 1000)
        if self._since_start <= stale_after_start:
            exposed = self._started_ns - 50_000_000  # a buffer filled before this start
        meta = {"SensorTimestamp": exposed, "ExposureTime": 10000, "AnalogueGain": 1.0, "FrameNo": self.frames}
        if "AfMode" in self.camera_controls:
            meta["AfState"] = 2
        return self.frames, meta

    def _need_open(self) -> None:
        if not self.is_open:
            raise RuntimeError("Camera is closed")

    def __enter__(self) -> Picamera2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


reset()

__all__ = [
    "Picamera2",
    "PersistentAllocator",
    "CompletedRequest",
    "allocators",
    "cameras",
    "wedged",
    "unwedge",
    "instances",
    "reset",
]
