"""prepare_upload: what leaves the booth. Real Pillow on generated JPEGs (EXIF with GPS, rotation, ICC)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageOps

from agent.steps.prepare import DRAFT_SLACK, Orientation, PrepareError, estimate_jpeg_quality, prepare_upload


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


# --------------------------------------------------------------------------------------------- [upload] rotate / mirror / crop


def quadrants(w: int = 400, h: int = 300) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, white bottom-right: every turn and flip tells."""
    im = Image.new("RGB", (w, h), (230, 20, 20))
    im.paste((20, 230, 20), (w // 2, 0, w, h // 2))
    im.paste((20, 20, 230), (0, h // 2, w // 2, h))
    im.paste((240, 240, 240), (w // 2, h // 2, w, h))
    return im


RED, GREEN, BLUE, WHITE = (230, 20, 20), (20, 230, 20), (20, 20, 230), (240, 240, 240)


def corners(data: bytes) -> tuple[tuple[int, ...], ...]:
    """The colour near each corner: top-left, top-right, bottom-left, bottom-right (rounded to the palette)."""
    im = opened(data).convert("RGB")
    w, h = im.size
    pts = [(w // 8, h // 8), (w - w // 8, h // 8), (w // 8, h - h // 8), (w - w // 8, h - h // 8)]
    out = []
    for x, y in pts:
        px = im.getpixel((x, y))
        out.append(min((RED, GREEN, BLUE, WHITE), key=lambda c: sum(abs(a - b) for a, b in zip(px, c))))
    return tuple(out)


@pytest.mark.parametrize(
    ("rotate", "mirror", "size", "want"),
    [
        (0, False, (400, 300), (RED, GREEN, BLUE, WHITE)),
        (0, True, (400, 300), (GREEN, RED, WHITE, BLUE)),
        (90, False, (300, 400), (BLUE, RED, WHITE, GREEN)),
        (180, False, (400, 300), (WHITE, BLUE, GREEN, RED)),
        (270, False, (300, 400), (GREEN, WHITE, RED, BLUE)),
        (90, True, (300, 400), (RED, BLUE, GREEN, WHITE)),
    ],
)
def test_rotate_and_mirror_pixel_by_pixel(rotate, mirror, size, want):
    src = jpeg(quadrants(), quality=95)
    out = prepare_upload(src, 2048, 90, orientation=Orientation.of(rotate, mirror, None))
    assert opened(out).size == size
    assert corners(out) == want
    reference = quadrants().rotate(-rotate, expand=True)  # Pillow's own turn (counter-clockwise for positive)
    if mirror:
        reference = ImageOps.mirror(reference)
    diff = np.abs(np.asarray(opened(out).convert("RGB"), float) - np.asarray(reference, float)).mean()
    assert diff < 4


def test_centre_crop_to_portrait_keeps_the_middle_exactly():
    im = Image.new("RGB", (1600, 1200), (0, 0, 0))
    im.paste((250, 250, 250), (350, 0, 1250, 1200))  # the middle 900 px: what a 3:4 crop of 1600x1200 keeps
    out = opened(prepare_upload(jpeg(im, quality=95), 4096, 95, orientation=Orientation.of(0, False, "3:4")))
    assert out.size == (900, 1200)
    arr = np.asarray(out.convert("L"), float)
    assert arr[:, 4:-4].min() > 200  # nothing black left at the sides: the crop is centred to the pixel
    assert arr.mean() > 240


def test_crop_then_max_edge_and_after_rotation():
    src = jpeg(textured(4056, 3040), quality=95)  # a Pi HQ still
    out = opened(prepare_upload(src, 2048, 90, orientation=Orientation.of(0, False, "3:4")))
    assert out.size == (1536, 2048)  # 3:4 of the full frame (2280x3040), shrunk to max_edge
    turned = opened(prepare_upload(src, 2048, 90, orientation=Orientation.of(90, False, "3:4")))
    # turned upright first (3040x4056), then 3:4 of that (3040x4053): long enough for the half-size DCT decode,
    # which is used as it is (within DRAFT_SLACK of max_edge)
    assert turned.size == (1520, 2027) and max(turned.size) >= DRAFT_SLACK * 2048


def test_crop_applies_after_exif_orientation():
    stored = Image.new("RGB", (400, 200), (220, 20, 20))
    src = jpeg(stored, quality=95, exif=exif_with_gps(orientation=6))  # upright it is 200x400
    out = opened(prepare_upload(src, 2048, 90, orientation=Orientation.of(0, False, "1:1")))
    assert out.size == (200, 200)
    assert ExifTags.Base.Orientation not in out.getexif()


def test_an_orientation_always_reencodes_even_a_clean_small_jpeg():
    src = jpeg(quadrants(), quality=85)
    assert prepare_upload(src, 2048, 90) is src
    assert prepare_upload(src, 2048, 90, orientation=Orientation.of(0, True, None)) != src
