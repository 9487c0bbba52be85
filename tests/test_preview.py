"""The live preview over real HTTP: one producer for any number of viewers, a frame-rate cap, stopping when
nobody watches, the selfie mirror, and a placeholder that says why when the camera is down."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from agent import preview as preview_mod
from tests.support.http import api_booths

BOUNDARY = b"--edgeagentframe\r\n"


@pytest.fixture
def booth(config_file):
    with api_booths() as start:
        yield lambda **over: start(config_file(**over))


def read_parts(url: str, seconds: float, out: list[bytes], ready: threading.Event | None = None) -> None:
    """Read multipart JPEG frames from an MJPEG stream for `seconds`."""
    with httpx.Client(timeout=10) as c, c.stream("GET", url) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "multipart/x-mixed-replace; boundary=edgeagentframe"
        if ready is not None:
            ready.set()
        buf = b""
        end = time.monotonic() + seconds
        for chunk in r.iter_bytes():
            buf += chunk
            while True:
                start = buf.find(BOUNDARY)
                head_end = buf.find(b"\r\n\r\n", start)
                if start < 0 or head_end < 0:
                    break
                headers = buf[start + len(BOUNDARY) : head_end].decode()
                length = int(headers.split("Content-Length: ")[1].split("\r\n")[0])
                body_at = head_end + 4
                if len(buf) < body_at + length + 2:
                    break
                out.append(buf[body_at : body_at + length])
                buf = buf[body_at + length + 2 :]
            if time.monotonic() > end:
                return


def test_five_viewers_share_one_producer_capped_in_rate(booth):
    agent, api = booth(camera={"driver": "synthetic", "width": 320, "height": 240, "preview_fps": 8})
    preview = agent.camera_service.preview
    assert agent.camera_service.wait_state(("ok",), 5)
    url = f"{api.url}/api/preview.mjpg"
    frames: list[list[bytes]] = [[] for _ in range(5)]
    ready = [threading.Event() for _ in range(5)]
    before = preview.produced
    started = time.monotonic()
    viewers = [threading.Thread(target=read_parts, args=(url, 2.0, frames[i], ready[i])) for i in range(5)]
    for v in viewers:
        v.start()
    for v in viewers:
        v.join(15)
    took = time.monotonic() - started
    produced = preview.produced - before
    assert produced <= 8 * took + 2  # the cap holds whatever the number of viewers
    assert produced >= 8  # and it did produce
    for got in frames:
        assert len(got) >= 0.7 * (8 * 2.0)  # each viewer got (nearly) every frame made while it watched
        assert len(got) <= produced  # never a frame that was not produced: one producer, shared
        assert len(set(got)) == len(got)  # never the same frame twice
        im = Image.open(io.BytesIO(got[-1]))
        assert im.format == "JPEG" and im.size == (320, 240)
    shared = set(frames[0]).intersection(*map(set, frames[1:]))
    assert len(shared) >= 0.5 * len(frames[0])  # the very same JPEGs: encoded once, sent five times
    assert api.usage["connections"] >= 0


def test_the_producer_stops_when_nobody_watches(booth, monkeypatch):
    monkeypatch.setattr(preview_mod, "IDLE_STOP_S", 0.3)
    agent, api = booth()
    preview = agent.camera_service.preview
    got: list[bytes] = []
    read_parts(f"{api.url}/api/preview.mjpg", 0.5, got)
    assert got
    deadline = time.monotonic() + 5
    while preview.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not preview.running and preview.viewers == 0
    count = preview.produced
    time.sleep(0.5)
    assert preview.produced == count  # an unwatched preview asks nothing of the camera


def test_single_frame_is_mirrored_for_the_guest_but_not_in_the_upload(booth, tmp_path: Path):
    left_red = Image.new("RGB", (400, 300), (220, 20, 20))
    left_red.paste((20, 20, 220), (200, 0, 400, 300))
    left_red.save(tmp_path / "scene.png")
    agent, api = booth(
        camera={"driver": "file", "path": str(tmp_path / "scene.png"), "width": 400, "height": 300},
        upload={"max_edge": 512, "jpeg_quality": 85, "preview_mirror": True, "mirror": False},
    )
    r = httpx.get(f"{api.url}/api/preview.jpg", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    im = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), dtype=float)
    h, w, _ = im.shape
    assert (w, h) == (400, 300)
    left, right = im[:, : w // 2 - 10].mean(axis=(0, 1)), im[:, w // 2 + 10 :].mean(axis=(0, 1))
    assert left[2] > 180 and right[0] > 180  # blue on the left now: the guest sees a mirror


def test_a_placeholder_with_the_reason_while_the_camera_is_down(booth, tmp_path: Path):
    missing = tmp_path / "later.avi"
    agent, api = booth(camera={"driver": "opencv", "device": str(missing), "retry_base_s": 30})
    assert agent.camera_service.wait_state(("retrying",), 5)
    r = httpx.get(f"{api.url}/api/preview.jpg", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    im = Image.open(io.BytesIO(r.content)).convert("RGB")
    assert im.size == (640, 480)  # the configured camera's shape at the preview size
    pixels = np.asarray(im, dtype=float)
    assert pixels.mean() < 80 and pixels.max() > 150  # a dark card with text on it
    assert r.content == preview_mod.placeholder_jpeg(agent.camera_state()["detail"], 640, 480)
    got: list[bytes] = []
    read_parts(f"{api.url}/api/preview.mjpg", 0.5, got)
    assert got and got[0] == r.content
