"""The Pi camera driver against the picamera2 stand-in (tests/fakes/picamera2.py), which follows picamera2's
documented API. Covers what booth users hit: buffer allocation failing after mode switches, the frontend timing
out after hours, frames from before the trigger, autofocus that never finishes, a wedged stack."""

from __future__ import annotations

import io
import logging
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from agent.camera_service import CameraService
from hardware.camera import CameraError, CameraSpec, make_camera
from hardware.camera.picamera2 import i420_to_image
from tests.fakes import picamera2 as fake


def decode(jpeg: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(jpeg))
    assert im.format == "JPEG"
    im.load()
    return im


def colour_of(n: int) -> tuple[int, int, int]:
    return (n * 40) % 256, 128, 255 - (n * 40) % 256


def mean_rgb(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)


@pytest.fixture
def picam(monkeypatch):
    fake.reset()
    monkeypatch.setitem(sys.modules, "picamera2", fake)
    monkeypatch.setitem(sys.modules, "picamera2.allocators", fake.allocators)
    yield fake
    fake.unwedge.set()  # never leave a stuck thread behind
    fake.reset()


def spec(**kw) -> CameraSpec:
    return CameraSpec(**({"driver": "picamera2", "width": 1014, "height": 760} | kw))


def service(cam, **kw) -> CameraService:
    svc = CameraService(lambda: cam, retry_base_s=kw.pop("retry_base_s", 0.1), retry_max_s=0.4, **kw)
    svc.start()
    assert svc.wait_state(("ok",), 5), svc.camera_state()
    return svc


def test_preview_runs_on_lores_and_the_still_has_its_own_configuration(picam):
    cam = make_camera(spec(controls={"Sharpness": 2.0}, preview_max_edge=320))
    cam.open()
    (device,) = picam.instances
    preview_cfg = device.camera_config
    assert preview_cfg["use_case"] == "preview"
    assert preview_cfg["lores"] == {"format": "YUV420", "size": (320, 240)}
    frame = decode(cam.preview_jpeg(max_edge=320))
    assert frame.size == (320, 240)
    want = colour_of(device.frames)  # the lores frame, converted from YUV420, has the frame's colour
    assert np.abs(mean_rgb(frame) - want).max() < 6, (mean_rgb(frame), want)

    photo = cam.capture()
    assert decode(photo.jpeg).size == (1014, 760) == (photo.width, photo.height)
    still = [c for c in device.calls if c == "configure"]
    assert len(still) == 3  # preview, still, back to preview
    assert device.camera_config is preview_cfg and device.started  # the preview resumed after the still
    assert device.options["quality"] == 95
    assert cam.describe() == "picamera2 camera 0 imx477 1014x760"
    cam.close()
    assert device.calls[-2:] == ["stop", "close"] and not device.outstanding  # every request released


def test_controls_are_set_in_both_configurations(picam):
    cam = make_camera(spec(controls={"Sharpness": 2.0, "ExposureTime": 20000}))
    cam.capture()
    (device,) = picam.instances
    session = cam._handle
    for config in (session.still_cfg, session.preview_cfg):
        assert config["controls"] == {"Sharpness": 2.0, "ExposureTime": 20000}
    assert session.still_cfg["queue"] is False and session.still_cfg["buffer_count"] == 1
    cam.close()


def test_an_unknown_control_is_a_permanent_error_naming_it(picam):
    with pytest.raises(CameraError) as err:
        make_camera(spec(controls={"Sharpnes": 2.0})).open()
    assert err.value.permanent and "Sharpnes" in str(err.value) and "Sharpness" in str(err.value)


def test_persistent_allocator_survives_many_mode_switches(picam):
    picam.fail_alloc_after = 3  # a fragmented CMA heap: the 4th allocation would fail
    cam = make_camera(spec())
    for _ in range(20):
        cam.capture()
    (device,) = picam.instances
    assert device.switches >= 40 and device.allocations == 2  # preview + still, once each
    assert isinstance(device.allocator, fake.PersistentAllocator) and not device.outstanding
    cam.close()


def test_without_a_persistent_allocator_the_failure_is_reported_and_the_service_reopens(picam, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "picamera2.allocators", None)  # picamera2 older than 0.3.19
    picam.fail_alloc_after = 3
    svc = service(make_camera(spec()))
    svc.capture()  # allocations: preview (open), still, preview again: the heap is used up
    with pytest.raises(CameraError, match="Failed to allocate buffers"):
        svc.capture()
    assert svc.state == "retrying" and "Failed to allocate buffers" in svc.detail
    assert svc.wait_state(("ok",), 5)
    photo = svc.capture()  # a fresh Picamera2: its buffers were freed with the old one
    assert photo.width == 1014
    first, second = picam.instances[:2]
    assert not first.is_open and second.is_open
    assert sum("capture refused" in r.message for r in caplog.records) == 1
    svc.stop()


def test_a_frontend_timeout_after_hours_heals_by_reopening(picam):
    cam = make_camera(spec(timeout_s=0.5))
    svc = service(cam)
    svc.capture()
    picam.timeout_after_frames = picam.instances[0].frames  # "Camera frontend has timed out" from now on
    started = time.monotonic()
    with pytest.raises(CameraError, match=r"did not answer within 0\.5 s"):
        svc.capture()
    assert time.monotonic() - started < 1.5
    assert svc.state == "retrying"
    picam.timeout_after_frames = None
    assert svc.wait_state(("ok",), 5)
    assert svc.capture().width == 1014
    assert len(picam.instances) == 2 and not picam.instances[0].is_open
    svc.stop()


def test_frames_exposed_before_the_trigger_are_dropped(picam):
    picam.stale_after_start = 2  # every start hands out two buffers from before it
    cam = make_camera(spec())
    cam.open()
    photo = cam.capture()
    assert cam.stale_dropped >= 2
    (device,) = picam.instances
    assert not device.outstanding
    decode(photo.jpeg)
    picam.stale_after_start = 10  # a camera that never delivers a fresh frame: refused, not a stale photo
    with pytest.raises(CameraError, match="exposed before the trigger"):
        cam.capture()
    cam.close()


@pytest.mark.parametrize(("policy", "mode"), [("continuous", 2), ("on-capture", 1), ("off", 0)])
def test_autofocus_policy(picam, policy, mode):
    picam.has_autofocus = True
    cam = make_camera(spec(autofocus=policy))
    cam.capture()
    cam.capture()
    (device,) = picam.instances
    session = cam._handle
    assert session.still_cfg["controls"]["AfMode"] == mode == session.preview_cfg["controls"]["AfMode"]
    assert device.calls.count("autofocus_cycle") == (2 if policy == "on-capture" else 0)
    cam.close()


def test_autofocus_that_never_returns_is_given_up_and_the_photo_taken(picam, caplog):
    picam.has_autofocus = True
    picam.af_never_returns = True
    cam = make_camera(spec(autofocus="on-capture", af_timeout_s=0.3, timeout_s=1.0))
    cam.open()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        photo = cam.capture()
    took = time.monotonic() - started
    assert 0.3 <= took < 1.0 and photo.width == 1014
    assert cam.af_timeouts == 1 and picam.instances[0].controls["AfTrigger"] == 1  # the cycle was cancelled
    assert "autofocus did not finish within 0.3 s" in caplog.text
    cam.close()


def test_a_camera_without_autofocus_ignores_the_policy(picam):
    cam = make_camera(spec(autofocus="on-capture"))
    cam.capture()
    assert "AfMode" not in cam._handle.still_cfg["controls"]
    assert "autofocus_cycle" not in picam.instances[0].calls
    cam.close()


def test_missing_camera_and_missing_package(picam, monkeypatch):
    picam.cameras.clear()
    with pytest.raises(CameraError, match="no Pi camera number 0 .0 found.*rpicam-hello"):
        make_camera(spec()).open()
    monkeypatch.setitem(sys.modules, "picamera2", None)  # `from picamera2 import ...` now raises ImportError
    with pytest.raises(CameraError) as err:
        make_camera(spec())
    assert "sudo apt install python3-picamera2" in str(err.value) and "--system-site-packages" in str(err.value)
    assert err.value.permanent


def test_not_installed_stays_failed_with_the_fix_and_refuses_at_once(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    svc = CameraService(lambda: make_camera(spec()), retry_base_s=0.05)
    svc.start()
    assert svc.wait_state(("failed",), 5)
    assert "sudo apt install python3-picamera2" in svc.detail
    started = time.monotonic()
    with pytest.raises(CameraError, match="python3-picamera2"):
        svc.capture()
    assert time.monotonic() - started < 0.1
    time.sleep(0.3)
    assert svc.state == "failed"  # not retried: nothing changes until someone installs it
    svc.stop()


def test_a_wedged_camera_times_out_and_the_next_capture_reopens(picam):
    cam = make_camera(spec(width=320, height=240, timeout_s=0.5))
    cam.capture()
    picam.wedged.set()
    started = time.monotonic()
    with pytest.raises(CameraError, match=r"camera did not answer within 0\.5 s \(capture"):
        cam.capture()
    assert 0.45 <= time.monotonic() - started < 1.5
    assert cam.abandoned_calls == 1

    picam.wedged.clear()  # the stuck call is still stuck; a fresh camera works regardless
    assert decode(cam.capture().jpeg).size == (320, 240)
    stuck, fresh = picam.instances
    assert fresh.is_open and stuck.is_open  # the stuck one is not closed under the stuck call
    picam.unwedge.set()  # the stuck call returns at last: its camera gets closed behind the scenes
    deadline = time.monotonic() + 5
    while stuck.is_open and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not stuck.is_open and fresh.is_open
    cam.close()


def test_the_drivers_own_wait_running_out_is_a_camera_error_too(picam):
    cam = make_camera(spec(width=320, height=240, timeout_s=0.3))
    cam.open()
    picam.frame_delay_s = 1.0  # slower than wait=: picamera2 raises TimeoutError itself
    with pytest.raises(CameraError, match=r"did not answer within 0\.3 s"):
        cam.capture()
    assert cam.abandoned_calls == 0  # picamera2's wait ran out first: a clean failure, no thread left behind
    picam.frame_delay_s = 0.0
    assert cam.capture().width == 320  # reopened
    assert len(picam.instances) == 2 and not picam.instances[0].is_open


def test_the_preview_pauses_during_the_still(picam):
    svc = service(make_camera(spec(width=320, height=240, timeout_s=2.0)))
    assert svc.preview_frame() is not None
    picam.frame_delay_s = 0.3
    seen: list[bytes | None] = []
    capture = threading.Thread(target=svc.capture)
    capture.start()
    time.sleep(0.1)
    seen.append(svc.preview_frame())  # the still holds the camera: the preview waits, nothing is asked of it
    capture.join()
    picam.frame_delay_s = 0.0
    assert seen == [None] and svc.state == "ok"
    assert svc.preview_frame() is not None
    svc.stop()


def test_i420_conversion_matches_the_rgb_colour():
    for n in (1, 3, 5):
        r, g, b = colour_of(n)
        y = 0.299 * r + 0.587 * g + 0.114 * b
        arr = np.empty((12, 8), dtype=np.uint8)
        arr[:8] = round(y)
        arr[8:10] = round(128 + (b - y) / 1.772)
        arr[10:] = round(128 + (r - y) / 1.402)
        assert np.abs(mean_rgb(i420_to_image(arr)) - (r, g, b)).max() <= 2
