"""A stand-in for the Raspberry Pi `picamera2` package, the one fake in this project (the Pi camera stack cannot
exist on a test machine). Tests put it in `sys.modules["picamera2"]`.

It keeps the real method names and signatures the driver uses (`Picamera2(camera_num)`,
`create_still_configuration`, `configure`, `start`, `capture_metadata/capture_array/capture_file(..., wait=)`,
`stop`, `close`, `options`, `camera_properties`, `global_camera_info`) and the real meaning of `wait`: a number
of seconds after which a capture raises TimeoutError.

Knobs for tests (module state; `reset()` between tests):
- `cameras`: what `global_camera_info()` reports; `Picamera2(n)` raises IndexError past its end, like the real one.
- `wedged`: while set, capture calls block and ignore `wait` (a wedged camera stack) until `unwedge` is set.
- `frame_delay_s`: how long each frame takes; a `wait` shorter than that raises TimeoutError, as the real one does.
- `instances`: every Picamera2 made, to check that a stuck one was closed and a fresh one opened.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from PIL import Image

cameras: list[dict[str, Any]] = []
wedged = threading.Event()
unwedge = threading.Event()
instances: list[Picamera2] = []
frame_delay_s = 0.0


def reset() -> None:
    global frame_delay_s
    frame_delay_s = 0.0
    cameras[:] = [
        {"Model": "imx477", "Location": 2, "Rotation": 180, "Id": "/base/soc/i2c0mux/i2c@1/imx477@1a", "Num": 0}
    ]
    wedged.clear()
    unwedge.clear()
    instances.clear()


reset()


class Picamera2:
    def __init__(
        self, camera_num: int = 0, verbose_console: Any = None, tuning: Any = None, allocator: Any = None
    ) -> None:
        info = self.global_camera_info()[camera_num]  # IndexError for a camera that is not there
        self.camera_num = info["Num"]
        self.camera_properties = {"Model": info["Model"], "PixelArraySize": (4056, 3040)}
        self.sensor_resolution = (4056, 3040)
        self.options: dict[str, Any] = {}
        self.camera_config: dict[str, Any] | None = None
        self.started = False
        self.is_open = True
        self.frames = 0
        self.calls: list[str] = []
        instances.append(self)

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        return [dict(c) for c in cameras]

    def create_still_configuration(
        self,
        main: dict | None = None,
        lores: dict | None = None,
        raw: dict | None = None,
        transform: Any = None,
        colour_space: Any = None,
        buffer_count: int = 1,
        controls: dict | None = None,
        display: str | None = None,
        encode: str | None = None,
        queue: bool = True,
        sensor: dict | None = None,
        use_case: str = "still",
    ) -> dict:
        stream = {"format": "BGR888", "size": self.sensor_resolution, "preserve_ar": True} | dict(main or {})
        return {
            "use_case": use_case,
            "buffer_count": buffer_count,
            "queue": queue,
            "main": stream,
            "lores": lores,
            "raw": raw,
            "controls": dict(controls or {}),
            "display": display,
            "encode": encode,
        }

    def configure(self, camera_config: dict) -> None:
        self._need_open()
        self.calls.append("configure")
        self.camera_config = camera_config

    def start(self, config: dict | None = None, show_preview: bool | None = False) -> None:
        self._need_open()
        if config is not None:
            self.configure(config)
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        self.calls.append("start")
        self.started = True

    def stop(self) -> None:
        self.calls.append("stop")
        self.started = False

    def close(self) -> None:
        self.calls.append("close")
        self.started = False
        self.is_open = False

    # -------------------------------------------------------------------------------------------- captures

    def capture_metadata(self, wait: Any = None, signal_function: Any = None) -> dict:
        self._next_frame(wait)
        return {"SensorTimestamp": self.frames, "ExposureTime": 10000, "AnalogueGain": 1.0}

    def capture_array(self, name: str = "main", wait: Any = None, signal_function: Any = None) -> np.ndarray:
        n = self._next_frame(wait)
        w, h = self.camera_config[name]["size"]
        frame = np.empty((h, w, 3), dtype=np.uint8)
        frame[...] = ((n * 40) % 256, 128, 255 - (n * 40) % 256)  # R, G, B: the frame number as a colour
        return frame

    def capture_file(
        self,
        file_output: Any,
        name: str = "main",
        format: str | None = None,
        wait: Any = None,
        signal_function: Any = None,
        exif_data: dict | None = None,
    ) -> dict:
        img = Image.fromarray(self.capture_array(name, wait=wait))
        quality = self.options.get("quality", 90)
        img.save(file_output, format=format or "jpeg", quality=quality)  # a path or a file object, like the real one
        return {"SensorTimestamp": self.frames}

    def _next_frame(self, wait: Any) -> int:
        self._need_open()
        if not self.started:
            raise RuntimeError("Camera not started")  # the real one would wait forever; fail loudly instead
        self.calls.append("capture")
        if wedged.is_set():
            unwedge.wait()  # ignores `wait`: the stack is stuck below the Python layer
        if frame_delay_s:
            limit = wait if isinstance(wait, (int, float)) and not isinstance(wait, bool) else None
            if limit is not None and limit < frame_delay_s:
                time.sleep(limit)
                raise TimeoutError()
            time.sleep(frame_delay_s)
        self.frames += 1
        return self.frames

    def _need_open(self) -> None:
        if not self.is_open:
            raise RuntimeError("Camera is closed")

    def __enter__(self) -> Picamera2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Picamera2", "cameras", "wedged", "unwedge", "instances", "reset"]
