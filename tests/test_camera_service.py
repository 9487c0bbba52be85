"""The camera service: state, capped backoff, permanent faults that stay failed (and heal when their path
appears), refusals with their reason logged once. Real drivers on real files."""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image

from agent.camera_service import CameraService
from hardware.camera import CameraError, CameraSpec, make_camera
from tests.support.mjpeg_source import write_video


def test_a_missing_image_folder_stays_failed_until_it_appears(tmp_path: Path, caplog):
    folder = tmp_path / "hot"
    changes: list[dict] = []
    svc = CameraService(
        lambda: make_camera(CameraSpec(driver="file", path=folder, width=320, height=240)),
        on_change=changes.append,
        retry_base_s=0.05,
    )
    svc.start()
    try:
        assert svc.wait_state(("failed",), 5)
        assert svc.camera_state() == {"state": "failed", "detail": f"no such image or folder: {folder}"}
        try:
            svc.capture()
            raise AssertionError("captured without a camera")
        except CameraError as e:
            assert str(e) == f"no such image or folder: {folder}"
        folder.mkdir()
        Image.new("RGB", (64, 48), (200, 10, 10)).save(folder / "a.jpg")
        assert svc.wait_state(("ok",), 5)
        assert svc.capture().width == 64
    finally:
        svc.stop()
    assert [c["state"] for c in changes] == ["failed", "ok"]
    assert caplog.text.count("capture refused") == 1


def test_transient_faults_back_off_up_to_the_cap_then_heal(tmp_path: Path):
    video = tmp_path / "later.avi"
    details: list[str] = []
    svc = CameraService(
        lambda: make_camera(CameraSpec(driver="opencv", device=str(video))),
        on_change=lambda st: details.append(st["detail"] or st["state"]),
        retry_base_s=0.1,
        retry_max_s=0.4,
    )
    svc.start()
    try:
        deadline = time.monotonic() + 5
        while svc.failures < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        # announced when it changes: the 4th and 5th wait at the cap say the same as the 3rd
        assert details == [f"retrying in {s} s: no such video file: {video}" for s in ("0.1", "0.2", "0.4")]
        write_video(video, frames=5)
        assert svc.wait_state(("ok",), 5)
        assert svc.capture().width == 320
        assert svc.failures == 0
    finally:
        svc.stop()


def test_a_capture_while_retrying_tries_at_once(tmp_path: Path):
    video = tmp_path / "later.avi"
    svc = CameraService(
        lambda: make_camera(CameraSpec(driver="opencv", device=str(video))), retry_base_s=30, retry_max_s=30
    )
    svc.start()
    try:
        assert svc.wait_state(("retrying",), 5)
        write_video(video, frames=5)  # replugged: the guest's press must not wait 30 s for the next try
        assert svc.capture().width == 320 and svc.state == "ok"
    finally:
        svc.stop()
