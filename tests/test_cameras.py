"""Cameras: real Pillow and OpenCV on generated images and a generated video; the fake picamera2 module is the one
stand-in (the Pi camera stack cannot exist here)."""

from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from hardware.camera import Camera, CameraError, CameraSpec, Photo, make_camera


def decode(jpeg: bytes) -> Image.Image:
    assert jpeg[:2] == b"\xff\xd8", "not a JPEG"
    im = Image.open(io.BytesIO(jpeg))
    assert im.format == "JPEG"
    im.load()
    return im


def mean_rgb(im: Image.Image) -> tuple[float, float, float]:
    return tuple(np.asarray(im.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(axis=0))


def save(path: Path, size: tuple[int, int], colour: tuple[int, int, int], fmt: str | None = None, **kw) -> Path:
    Image.new("RGB", size, colour).save(path, fmt, **kw)
    return path


def close_to(a, b, tol: float = 12.0) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


# --------------------------------------------------------------------------------------------- synthetic


def test_synthetic_captures_differ_and_have_the_configured_size():
    cam = make_camera(CameraSpec(driver="synthetic", width=1280, height=720))
    with cam:
        photos = [cam.capture() for _ in range(3)]
    assert all(isinstance(p, Photo) for p in photos)
    assert len({p.jpeg for p in photos}) == 3
    for p in photos:
        assert (p.width, p.height) == (1280, 720) == decode(p.jpeg).size
    assert photos[0].taken_at <= photos[1].taken_at <= photos[2].taken_at <= time.time()
    assert cam.describe() == "synthetic 1280x720"


def _hook_threads(driver: str = "file") -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"camera-{driver}"]


def test_one_hook_thread_serves_every_call_and_a_closed_camera_keeps_none(tmp_path: Path):
    Image.new("RGB", (320, 240), (10, 120, 200)).save(tmp_path / "card.jpg")
    before = len(_hook_threads())
    cam = make_camera(CameraSpec(driver="file", path=tmp_path / "card.jpg", width=320, height=240))
    for _ in range(10):
        cam.capture()
        cam.preview_jpeg(max_edge=160)
    assert len(_hook_threads()) == before + 1  # not a thread per frame
    cam.close()
    deadline = time.monotonic() + 5
    while len(_hook_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(_hook_threads()) == before
    assert cam.capture().width == 320  # usable again: a new hook thread
    cam.close()
    synthetic = make_camera(CameraSpec(driver="synthetic", width=320, height=240))
    synthetic.capture()
    assert _hook_threads("synthetic") == []  # drawing cannot hang: it runs on the caller's thread


def test_preview_is_small_and_open_is_idempotent():
    cam = make_camera(CameraSpec(driver="synthetic"))
    cam.open()
    cam.open()
    frame = decode(cam.preview_jpeg(max_edge=320, quality=60))
    assert max(frame.size) == 320 and frame.size == (320, 180)
    assert (cam.capture().width, cam.capture().height) == (1920, 1080)
    cam.close()
    cam.close()


def test_capture_and_preview_from_different_threads():
    cam = make_camera(CameraSpec(driver="synthetic", width=640, height=360))
    errors: list[BaseException] = []
    captured: list[Photo] = []

    def previews():
        try:
            for _ in range(20):
                decode(cam.preview_jpeg())
        except BaseException as e:
            errors.append(e)

    def captures():
        try:
            for _ in range(10):
                captured.append(cam.capture())
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=previews), threading.Thread(target=captures)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    cam.close()
    assert errors == []
    assert len({p.jpeg for p in captured}) == 10


# --------------------------------------------------------------------------------------------- file


def test_file_single_png_is_reencoded_as_jpeg_every_time(tmp_path):
    png = save(tmp_path / "booth.png", (320, 200), (200, 40, 40))
    cam = make_camera(CameraSpec(driver="file", path=png))
    first, second = cam.capture(), cam.capture()
    assert first.jpeg == second.jpeg
    im = decode(first.jpeg)
    assert im.size == (320, 200) == (first.width, first.height)  # smaller than 1920x1080: not enlarged
    assert close_to(mean_rgb(im), (200, 40, 40))
    assert cam.describe().startswith("file image ")


def test_file_transparent_png_lands_on_white(tmp_path):
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))  # fully transparent red
    rgba.save(tmp_path / "cut.png")
    cam = make_camera(CameraSpec(driver="file", path=tmp_path / "cut.png"))
    assert close_to(mean_rgb(decode(cam.capture().jpeg)), (255, 255, 255), tol=3)


def test_file_large_images_shrink_to_the_box_in_either_orientation(tmp_path):
    save(tmp_path / "a_wide.png", (2000, 1000), (10, 10, 10))
    save(tmp_path / "b_tall.jpg", (1000, 2000), (10, 10, 10), quality=90)
    cam = make_camera(CameraSpec(driver="file", path=tmp_path, width=640, height=480))
    wide, tall = cam.capture(), cam.capture()
    assert decode(wide.jpeg).size == (640, 320)
    assert decode(tall.jpeg).size == (320, 640)  # a portrait photo is not squeezed into a landscape box


def test_file_folder_round_robin_in_name_order_skipping_non_images(tmp_path):
    colours = {"b.png": (200, 30, 30), "a.jpg": (30, 200, 30), "c.webp": (30, 30, 200)}
    for name, colour in colours.items():
        save(tmp_path / name, (120, 80), colour, **({"quality": 95} if name.endswith("jpg") else {}))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "._a.jpg").write_bytes(b"macOS resource fork, not an image")
    (tmp_path / "sub.jpg").mkdir()
    cam = make_camera(CameraSpec(driver="file", path=tmp_path))
    seen = [mean_rgb(decode(cam.capture().jpeg)) for _ in range(4)]
    expected = [colours["a.jpg"], colours["b.png"], colours["c.webp"], colours["a.jpg"]]
    assert all(close_to(s, e) for s, e in zip(seen, expected)), seen


def test_file_folder_picks_up_new_images_between_captures(tmp_path):
    save(tmp_path / "1.png", (40, 40), (250, 0, 0))
    cam = make_camera(CameraSpec(driver="file", path=tmp_path))
    assert close_to(mean_rgb(decode(cam.capture().jpeg)), (250, 0, 0))
    save(tmp_path / "2.png", (40, 40), (0, 0, 250))
    assert close_to(mean_rgb(decode(cam.capture().jpeg)), (0, 0, 250))


def test_file_empty_folder_fails_at_open_naming_the_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    cam = make_camera(CameraSpec(driver="file", path=tmp_path))
    with pytest.raises(CameraError) as err:
        cam.open()
    assert str(tmp_path) in str(err.value) and "no images" in str(err.value)


def test_file_exif_rotated_jpeg_comes_out_upright(tmp_path):
    stored = Image.new("RGB", (200, 100), (220, 20, 20))  # stored landscape: red left, blue right half
    stored.paste((20, 20, 220), (100, 0, 200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored.save(tmp_path / "phone.jpg", quality=95, exif=exif)
    cam = make_camera(CameraSpec(driver="file", path=tmp_path / "phone.jpg"))
    photo = decode(cam.capture().jpeg)
    reference = ImageOps.exif_transpose(Image.open(tmp_path / "phone.jpg"))  # Pillow's own reading of the tag
    assert photo.size == (100, 200) == reference.size
    top, bottom = photo.crop((0, 0, 100, 90)), photo.crop((0, 110, 100, 200))
    assert close_to(mean_rgb(top), mean_rgb(reference.crop((0, 0, 100, 90))))
    assert close_to(mean_rgb(bottom), mean_rgb(reference.crop((0, 110, 100, 200))))
    assert close_to(mean_rgb(top), (220, 20, 20)) and close_to(mean_rgb(bottom), (20, 20, 220))


def test_file_clean_small_jpeg_is_passed_on_untouched(tmp_path):
    path = save(tmp_path / "clean.jpg", (300, 200), (1, 2, 3), quality=80)
    cam = make_camera(CameraSpec(driver="file", path=path))
    assert cam.capture().jpeg == path.read_bytes()


# --------------------------------------------------------------------------------------------- opencv

FRAME_COLOURS = [(0, 0, 230), (0, 230, 0), (230, 0, 0), (0, 230, 230), (230, 0, 230)]  # BGR, one per frame


@pytest.fixture
def video(tmp_path) -> Path:
    """A real MJPG AVI of 320x240 whose frame i is a solid FRAME_COLOURS[i]."""
    path = tmp_path / "frames.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    assert writer.isOpened()
    for bgr in FRAME_COLOURS:
        writer.write(np.full((240, 320, 3), bgr, dtype=np.uint8))
    writer.release()
    return path


def frame_index(jpeg: bytes) -> int:
    r, g, b = mean_rgb(decode(jpeg))
    distances = [abs(r - c[2]) + abs(g - c[1]) + abs(b - c[0]) for c in FRAME_COLOURS]
    best = min(range(len(FRAME_COLOURS)), key=distances.__getitem__)
    assert distances[best] < 30, (r, g, b)
    return best


def test_opencv_reads_a_video_file_in_order_and_loops(video):
    cam = make_camera(CameraSpec(driver="opencv", device=str(video)))
    with cam:
        photos = [cam.capture() for _ in range(7)]
        assert [frame_index(p.jpeg) for p in photos] == [0, 1, 2, 3, 4, 0, 1]
        assert (photos[0].width, photos[0].height) == (320, 240)  # the video's size: not enlarged to 1920x1080
        assert cam.describe() == f"opencv {video} (video file) 320x240"
        preview = decode(cam.preview_jpeg(max_edge=160))
        assert preview.size == (160, 120)


def test_opencv_shrinks_frames_larger_than_the_configured_size(video):
    cam = make_camera(CameraSpec(driver="opencv", device=str(video), width=160, height=120))
    photo = cam.capture()
    cam.close()
    assert decode(photo.jpeg).size == (160, 120)


def test_opencv_missing_device_names_it_and_hints_at_the_video_group():
    cam = make_camera(CameraSpec(driver="opencv", device="/dev/video99"))
    with pytest.raises(CameraError) as err:
        cam.capture()
    msg = str(err.value)
    assert "/dev/video99" in msg and "`video` group" in msg and "no such device" in msg


def test_opencv_missing_index_and_missing_video_file(tmp_path):
    with pytest.raises(CameraError, match="cannot open camera 57.*`video` group"):
        make_camera(CameraSpec(driver="opencv", device="57")).open()
    with pytest.raises(CameraError, match="no such video file"):
        make_camera(CameraSpec(driver="opencv", device=str(tmp_path / "gone.mp4"))).open()


def test_opencv_missing_module_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(CameraError, match="opencv-python-headless") as err:
        make_camera(CameraSpec(driver="opencv", device="0"))
    assert err.value.permanent


def test_make_camera_refuses_an_unknown_driver():
    class Odd:
        driver = "polaroid"

    with pytest.raises(CameraError, match="unknown camera driver 'polaroid'"):
        make_camera(Odd())
    assert issubclass(type(make_camera(CameraSpec(driver="synthetic"))), Camera)
