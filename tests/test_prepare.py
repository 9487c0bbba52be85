"""prepare_upload: what leaves the booth. Real Pillow on generated JPEGs (EXIF with GPS, rotation, ICC)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageOps

from agent.steps.prepare import DRAFT_SLACK, PrepareError, estimate_jpeg_quality, prepare_upload


def jpeg(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG"
    im.load()
    return im


def textured(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return Image.fromarray(arr).resize((w, h), Image.Resampling.BILINEAR)


def exif_with_gps(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "BoothCam"
    exif[ExifTags.Base.BodySerialNumber] = "SN-12345"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.0)
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    return exif


def test_shrinks_to_max_edge_keeping_the_aspect_ratio():
    src = jpeg(textured(3000, 2000), quality=95)
    out = opened(prepare_upload(src, max_edge=1024, quality=85))
    assert DRAFT_SLACK * 1024 <= max(out.size) <= 1024
    assert out.width / out.height == pytest.approx(1.5, rel=0.01)
    assert out.mode == "RGB"
    assert estimate_jpeg_quality(out) == 85


def test_without_draft_the_longest_edge_is_exactly_max_edge():
    src = jpeg(textured(3000, 2000), quality=95)
    out = opened(prepare_upload(src, max_edge=1024, quality=85, draft=False))
    assert out.size == (1024, 683)


def test_pi_hq_photo_uses_the_half_size_dct_decode_as_is():
    src = jpeg(textured(4056, 3040), quality=95)
    assert opened(prepare_upload(src, 2048, 90)).size == (2028, 1520)  # within DRAFT_SLACK of 2048: no resample
    assert opened(prepare_upload(src, 2048, 90, draft=False)).size == (2048, 1535)


def test_big_shrinks_draft_then_resample_to_max_edge():
    src = jpeg(textured(6000, 4000), quality=90)
    out = opened(prepare_upload(src, 2048, 90))  # 1/2 decode = 3000 > 2048, 1/4 = 1500 < 0.9 * 2048
    assert out.size == (2048, 1365)


def test_never_upscales():
    src = jpeg(textured(300, 200), quality=95, exif=exif_with_gps())
    assert opened(prepare_upload(src, max_edge=2048, quality=90)).size == (300, 200)


def test_strips_exif_gps_serials_and_comments():
    src = jpeg(textured(800, 600), quality=95, exif=exif_with_gps(), comment=b"owner: Jane Doe")
    assert opened(src).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the input really has GPS
    data = prepare_upload(src, max_edge=400, quality=90)
    out = opened(data)
    assert dict(out.getexif()) == {}
    assert not out.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert "comment" not in out.info and "exif" not in out.info
    assert b"Exif" not in data and b"SN-12345" not in data and b"Jane" not in data and b"BoothCam" not in data


def test_metadata_is_stripped_even_when_no_resize_is_needed():
    src = jpeg(textured(640, 480), quality=80, exif=exif_with_gps())
    out = prepare_upload(src, max_edge=2048, quality=90)
    assert out != src and b"Exif" not in out
    assert opened(out).size == (640, 480)


@pytest.mark.parametrize("draft", [True, False])
def test_exif_orientation_is_applied(draft):
    stored = Image.new("RGB", (400, 200), (220, 20, 20))  # stored landscape: red left half, blue right half
    stored.paste((20, 20, 220), (200, 0, 400, 200))
    src = jpeg(stored, quality=95, exif=exif_with_gps(orientation=6))
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(src)))  # Pillow's own reading of the tag
    out = opened(prepare_upload(src, max_edge=2048, quality=90, draft=draft))
    assert out.size == reference.size == (200, 400)
    assert ExifTags.Base.Orientation not in out.getexif()
    for box in ((0, 0, 200, 180), (0, 220, 200, 400)):
        got = np.asarray(out.crop(box), dtype=float).mean(axis=(0, 1))
        want = np.asarray(reference.crop(box), dtype=float).mean(axis=(0, 1))
        assert np.abs(got - want).max() < 10


def test_orientation_is_applied_after_a_shrink():
    src = jpeg(textured(1600, 1200), quality=95, exif=exif_with_gps(orientation=8))
    assert opened(prepare_upload(src, max_edge=800, quality=90)).size == (600, 800)


def test_a_clean_jpeg_already_small_enough_is_sent_untouched():
    src = jpeg(textured(1280, 720), quality=85)
    assert prepare_upload(src, max_edge=2048, quality=90) is src  # re-encoding could only lose
    assert prepare_upload(src, max_edge=2048, quality=85) is src
    lower = prepare_upload(src, max_edge=2048, quality=70)  # asked for less than it has: smaller file
    assert lower != src and len(lower) < len(src) and estimate_jpeg_quality(opened(lower)) == 70


def test_icc_profile_is_kept():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = jpeg(textured(1000, 800), quality=95, icc_profile=icc, exif=exif_with_gps())
    assert opened(prepare_upload(src, max_edge=500, quality=90)).info.get("icc_profile") == icc


def test_png_with_transparency_becomes_an_rgb_jpeg_on_white():
    buf = io.BytesIO()
    Image.new("RGBA", (300, 300), (0, 0, 0, 0)).save(buf, "PNG")
    out = opened(prepare_upload(buf.getvalue(), max_edge=100, quality=90))
    assert out.mode == "RGB" and out.size == (100, 100)
    assert min(out.getpixel((50, 50))) > 245


def test_cmyk_jpeg_becomes_rgb():
    src = jpeg(Image.new("CMYK", (200, 100), (0, 255, 255, 0)), quality=90)
    out = opened(prepare_upload(src, max_edge=2048, quality=90))
    assert out.mode == "RGB"
    r, g, b = out.getpixel((100, 50))
    assert r > 200 and g < 60 and b < 60


def test_not_an_image_is_a_prepare_error():
    with pytest.raises(PrepareError, match="not an image"):
        prepare_upload(b"definitely not a jpeg", 2048, 90)
    with pytest.raises(PrepareError):
        prepare_upload(jpeg(textured(64, 64))[:200], 2048, 90)  # truncated


@pytest.mark.parametrize("quality", [10, 50, 75, 90, 95])
def test_quality_is_read_back_from_standard_tables(quality):
    assert estimate_jpeg_quality(opened(jpeg(textured(64, 64), quality=quality))) == quality


def test_quality_of_custom_tables_is_unknown():
    custom = [[2] * 64, [3] * 64]
    assert estimate_jpeg_quality(opened(jpeg(textured(64, 64), qtables=custom))) is None
