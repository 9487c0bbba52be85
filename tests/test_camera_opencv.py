"""The OpenCV driver on a live source OpenCV really reads: a video file played at real time as an MJPEG stream
on loopback (tests/support/mjpeg_source.py); every frame carries its number, so a test knows how old a still is."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.camera_service import CameraService
from hardware.camera import CameraSpec, make_camera
from hardware.camera.opencv import fourcc_text
from tests.support.mjpeg_source import MjpegSource, read_seq, write_video


@pytest.fixture
def source(tmp_path: Path):
    with MjpegSource(write_video(tmp_path / "live.avi"), fps=30) as src:
        yield src


def age_of(jpeg: bytes, src: MjpegSource, trigger: float) -> float:
    seq = read_seq(np.asarray(Image.open(io.BytesIO(jpeg)).convert("L")))
    return trigger - src.made_at[seq]


def test_the_newest_frame_reader_never_hands_out_a_frame_from_before_the_trigger(source):
    cam = make_camera(CameraSpec(driver="opencv", device=source.url, width=320, height=240))
    cam.open()
    ages = []
    for _ in range(3):
        time.sleep(0.4)  # idle between guests: a plain reader would let frames pile up now
        trigger = time.monotonic()
        ages.append(age_of(cam.capture().jpeg, source, trigger))
    reader = cam.reader
    assert reader is not None and reader.grabbed > 30 and reader.decoded <= 3  # drained all, decoded only stills
    cam.close()
    assert max(ages) <= 0.0, ages  # made after the button was pressed


def test_without_the_reader_the_stills_are_stale(source):
    """What the reader fixes: reading on demand gets the oldest buffered frame."""
    cam = make_camera(CameraSpec(driver="opencv", device=source.url, width=320, height=240, newest_frame=False))
    cam.open()
    time.sleep(0.6)
    trigger = time.monotonic()
    age = age_of(cam.capture().jpeg, source, trigger)
    cam.close()
    assert age > 0.3


def test_an_unplugged_camera_is_noticed_while_idle_and_heals_when_back(source, caplog):
    cam = make_camera(CameraSpec(driver="opencv", device=source.url, width=320, height=240, timeout_s=2.0))
    svc = CameraService(lambda: cam, retry_base_s=0.2, retry_max_s=0.5)
    svc.start()
    try:
        assert svc.wait_state(("ok",), 5)
        source.unplug()
        assert svc.wait_state(("retrying",), 5), svc.camera_state()  # no capture needed to notice
        assert "stopped delivering frames" in svc.detail or "cannot open" in svc.detail
        assert svc.detail.startswith("retrying in ")
        source.plug()
        assert svc.wait_state(("ok",), 10), svc.camera_state()
        assert svc.capture().width == 320
    finally:
        svc.stop()
    assert "camera retrying in" in caplog.text


def test_fourcc_text():
    assert fourcc_text(float(0x47504A4D)) == "MJPG"
    assert fourcc_text(0.0) == "?"
