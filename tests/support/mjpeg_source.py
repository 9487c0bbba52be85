"""A live camera stand-in that OpenCV reads for real: a video file played at real time as an MJPEG stream over
HTTP on loopback (what IP cameras and `ustreamer` serve). Every frame carries its sequence number as black/white
blocks in its top rows, and the source remembers when each numbered frame was made, so a reader can tell exactly
how old the frame it got is.

    with MjpegSource(video_path, fps=30) as src:
        cam = make_camera(CameraSpec(driver="opencv", device=src.url))
        seq = read_seq(decoded_rgb_array); age = now - src.made_at[seq]

`unplug()` drops every client and refuses new ones (a camera pulled out); `plug()` brings it back.
Used by tests/test_camera_opencv.py and bench/bench_camera.py.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np

BITS = 16
BLOCK = 16  # pixels per bit block: survives JPEG at any sane quality
BOUNDARY = b"frameboundary"


def stamp(frame: np.ndarray, seq: int) -> np.ndarray:
    out = frame.copy()
    for i in range(BITS):
        out[0:BLOCK, i * BLOCK : (i + 1) * BLOCK] = 255 if (seq >> i) & 1 else 0
    return out


def read_seq(rgb_or_bgr: np.ndarray) -> int:
    seq = 0
    for i in range(BITS):
        block = rgb_or_bgr[2 : BLOCK - 2, i * BLOCK + 2 : (i + 1) * BLOCK - 2]
        if float(block.mean()) > 127:
            seq |= 1 << i
    return seq


class MjpegSource:
    def __init__(self, video: Path, fps: float = 30.0, quality: int = 80) -> None:
        cap = cv2.VideoCapture(str(video))
        self.frames: list[np.ndarray] = []
        while True:
            ok, f = cap.read()
            if not ok:
                break
            self.frames.append(f)
        cap.release()
        if not self.frames:
            raise ValueError(f"no frames in {video}")
        if self.frames[0].shape[1] < BITS * BLOCK:
            raise ValueError("the video must be at least 256 pixels wide")
        self.fps = fps
        self.quality = quality
        self.made_at: dict[int, float] = {}  # seq -> time.monotonic() when the frame was made
        self.sent = 0
        self._plugged = threading.Event()
        self._plugged.set()
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        source = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                if not source._plugged.is_set():
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
                self.end_headers()
                with source._lock:
                    source._conns.add(self.connection)
                try:
                    source._play(self.wfile)
                except OSError:
                    pass
                finally:
                    with source._lock:
                        source._conns.discard(self.connection)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/stream.mjpg"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _play(self, out: Any) -> None:
        """Frames on a real-time clock: a late write (the reader is not reading) skips ticks, as a sensor
        does; the frames already written wait in the buffers, getting older - the stale-frame problem."""
        t0 = time.monotonic()
        interval = 1.0 / self.fps
        while not self._stop.is_set() and self._plugged.is_set():
            tick = int((time.monotonic() - t0) / interval)
            due = t0 + tick * interval
            with self._lock:
                seq = (max(self.made_at) + 1 if self.made_at else 1) % (1 << BITS)
                self.made_at[seq] = time.monotonic()
                self.sent += 1
            frame = stamp(self.frames[tick % len(self.frames)], seq)
            ok, jpg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            data = jpg.tobytes()
            out.write(
                b"--"
                + BOUNDARY
                + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                + str(len(data)).encode()
                + b"\r\n\r\n"
                + data
                + b"\r\n"
            )
            out.flush()
            wait = due + interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)

    def unplug(self) -> None:
        self._plugged.clear()
        with self._lock:
            for c in list(self._conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def plug(self) -> None:
        self._plugged.set()

    def start(self) -> MjpegSource:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.unplug()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MjpegSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_video(path: Path, frames: int = 30, size: tuple[int, int] = (320, 240), fps: float = 30.0) -> Path:
    """A small real MJPG AVI: a moving bar over a gradient (what cv2.VideoWriter writes is what OpenCV reads)."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError("cv2.VideoWriter could not open an MJPG AVI")
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    for i in range(frames):
        f = np.broadcast_to(x, (h, w, 3)).copy()
        bar = (i * w // frames) % w
        f[:, bar : bar + 12] = (40, 200, 240)
        writer.write(f)
    writer.release()
    return path
