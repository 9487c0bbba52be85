"""The prepare step: turn the kept photo into what is SENT to a platform.

The photo on disk stays as the camera took it. What goes over the wire is upright (EXIF orientation applied),
RGB, no longer than `upload.max_edge` on its longest edge (never enlarged), a JPEG at `upload.jpeg_quality`, and
carries no metadata: EXIF can hold GPS positions, serial numbers and owner names, XMP and comments can hold
anything. Only an ICC colour profile is kept, because dropping it shifts colours and it identifies nobody.

Speed and memory on a Pi: a JPEG that has to shrink is decoded with libjpeg's DCT scaling (`Image.draft`), which
decodes straight to 1/2, 1/4 or 1/8 size - a 12 MP photo never exists in memory at full size. When the scaled
decode lands at most `DRAFT_SLACK` below max_edge it is used as it is, without a resampling pass (a 4056x3040 Pi
HQ photo becomes 2028x1520 for max_edge 2048); otherwise the scaled decode is resampled down to max_edge exactly.

A photo is passed on byte for byte, without decoding, when re-encoding could only lose: it is a JPEG, RGB,
within max_edge, holds no metadata besides JFIF/ICC/Adobe markers, and was encoded with the standard (libjpeg)
tables at a quality no higher than the one asked for. A JPEG's quality is not stored in the file, but for
standard tables it can be read back exactly from the quantisation tables; a JPEG with other tables (a phone's,
a camera ISP's) is re-encoded, since its quality cannot be known.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, UnidentifiedImageError

from agent.platforms.base import SubmitRequest
from agent.platforms.errors import PermanentError
from agent.platforms.modes.common import with_choice
from hardware.camera.base import fit_within, to_rgb

if TYPE_CHECKING:
    from agent.jobs.model import Job

DRAFT_SLACK = 0.9  # a DCT-scaled decode this close below max_edge is good enough as it is

_ORIENTATION = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# JPEG segments that say nothing about who, where or with what: JFIF header, ICC profile, Adobe colour transform.
_HARMLESS_SEGMENTS = (("APP0", b"JFIF\x00"), ("APP2", b"ICC_PROFILE\x00"), ("APP14", b"Adobe"))


class PrepareError(ValueError):
    """The photo cannot be prepared (not an image, or one Pillow cannot decode). Retrying will not help."""


@dataclass(frozen=True)
class Orientation:
    """`[upload]` rotate / mirror / crop_aspect as one step, applied in that order: turn the camera's picture
    upright (clockwise degrees), mirror it left-right, then keep the centre at the wanted width:height. The same
    class serves the upload (`mirror`) and the live preview (`preview_mirror`)."""

    rotate: int = 0
    mirror: bool = False
    aspect: tuple[int, int] | None = None

    @classmethod
    def of(cls, rotate: int, mirror: bool, crop_aspect: str | None) -> Orientation:
        aspect = tuple(int(x) for x in crop_aspect.split(":")) if crop_aspect else None
        return cls(rotate % 360, mirror, aspect)  # type: ignore[arg-type]

    @property
    def identity(self) -> bool:
        return self.rotate == 0 and not self.mirror and self.aspect is None

    def apply(self, im: Image.Image) -> Image.Image:
        if self.rotate:
            im = im.transpose(_CLOCKWISE[self.rotate])
        if self.mirror:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        box = self.crop_box(*im.size)
        return im if box == (0, 0, *im.size) else im.crop(box)

    def size_after(self, width: int, height: int) -> tuple[int, int]:
        if self.rotate in (90, 270):
            width, height = height, width
        left, top, right, bottom = self.crop_box(width, height)
        return right - left, bottom - top

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The centred box of the wanted aspect ratio (the whole image without one)."""
        if self.aspect is None:
            return 0, 0, width, height
        aw, ah = self.aspect
        if width * ah > height * aw:  # too wide: keep the full height
            w = max(1, round(height * aw / ah))
            left = (width - w) // 2
            return left, 0, left + w, height
        h = max(1, round(width * ah / aw))
        top = (height - h) // 2
        return 0, top, width, top + h


_CLOCKWISE = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}


def prepare_upload(
    photo_jpeg: bytes, max_edge: int, quality: int, *, draft: bool = True, orientation: Orientation | None = None
) -> bytes:
    """The bytes to upload for a photo. `draft=False` turns the DCT-scaled decode off (for benchmarks);
    `orientation` is `[upload]` rotate / mirror / crop_aspect."""
    try:
        im = Image.open(io.BytesIO(photo_jpeg))
        with im:
            return _prepare(im, photo_jpeg, max_edge, quality, draft, orientation or Orientation())
    except Image.DecompressionBombError as e:
        raise PrepareError(f"photo too large to prepare: {e}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise PrepareError(f"not an image that can be prepared for upload: {e}") from None


def _prepare(im: Image.Image, original: bytes, max_edge: int, quality: int, draft: bool, ops: Orientation) -> bytes:
    exif_orientation = im.getexif().get(_ORIENTATION, 1)
    upright = (im.height, im.width) if exif_orientation in (5, 6, 7, 8) else im.size
    kept = ops.size_after(*upright)  # what is left after rotate / crop, at full size
    target = fit_within(kept[0], kept[1], max_edge, max_edge)
    if ops.identity and target == im.size and _can_send_as_is(im, quality):
        return original

    icc_profile = im.info.get("icc_profile")
    if draft and im.format == "JPEG" and target != kept:
        # decode at 1/2, 1/4 or 1/8 size when what is KEPT stays long enough (a crop keeps less of the frame)
        scale = _dct_scale(max(kept), max_edge)
        if scale > 1:
            im.draft("RGB", (im.width // scale, im.height // scale))
    out = to_rgb(im)
    if ops.identity and max(out.size) > max_edge:
        # nothing to cut away: shrink first, so turning the picture upright works on the small image
        out = out.resize(fit_within(out.width, out.height, max_edge, max_edge), Image.Resampling.LANCZOS)
    if exif_orientation in _TRANSPOSE:
        out = out.transpose(_TRANSPOSE[exif_orientation])
    if not ops.identity:
        out = ops.apply(out)
        if max(out.size) > max_edge:
            out = out.resize(fit_within(out.width, out.height, max_edge, max_edge), Image.Resampling.LANCZOS)
    out.info = {}  # Pillow would carry comments/XMP over from the source; nothing but pixels leaves the booth
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=quality, icc_profile=icc_profile)
    return buf.getvalue()


def _dct_scale(long_edge: int, max_edge: int) -> int:
    """The largest libjpeg scale-down (8, 4, 2) whose decode is still at least DRAFT_SLACK * max_edge long."""
    for scale in (8, 4, 2):
        if math.ceil(long_edge / scale) >= DRAFT_SLACK * max_edge:
            return scale
    return 1


def _can_send_as_is(im: Image.Image, quality: int) -> bool:
    if im.format != "JPEG" or im.mode != "RGB":
        return False
    for marker, payload in getattr(im, "applist", []):
        if not any(marker == m and payload.startswith(p) for m, p in _HARMLESS_SEGMENTS):
            return False  # EXIF, XMP, IPTC, comments, thumbnails...
    if im.info.get("comment"):
        return False
    estimated = estimate_jpeg_quality(im)
    return estimated is not None and estimated <= quality


# libjpeg's example tables (ITU T.81 Annex K), natural order, as Pillow reports them in `im.quantization`.
_STD_LUMA = (
    16,
    11,
    10,
    16,
    24,
    40,
    51,
    61,
    12,
    12,
    14,
    19,
    26,
    58,
    60,
    55,
    14,
    13,
    16,
    24,
    40,
    57,
    69,
    56,
    14,
    17,
    22,
    29,
    51,
    87,
    80,
    62,
    18,
    22,
    37,
    56,
    68,
    109,
    103,
    77,
    24,
    35,
    55,
    64,
    81,
    104,
    113,
    92,
    49,
    64,
    78,
    87,
    103,
    121,
    120,
    101,
    72,
    92,
    95,
    98,
    112,
    100,
    103,
    99,
)
_STD_CHROMA = (
    17,
    18,
    24,
    47,
    99,
    99,
    99,
    99,
    18,
    21,
    26,
    66,
    99,
    99,
    99,
    99,
    24,
    26,
    56,
    99,
    99,
    99,
    99,
    99,
    47,
    66,
    99,
    99,
    99,
    99,
    99,
    99,
) + (99,) * 32


def _scaled(table: tuple[int, ...], q: int) -> tuple[int, ...]:
    factor = 5000 // q if q < 50 else 200 - 2 * q  # jpeg_quality_scaling()
    return tuple(min(255, max(1, (v * factor + 50) // 100)) for v in table)


# the qualities of each luma table, highest first, computed once (a few qualities share a table)
_LUMA_QUALITIES: dict[tuple[int, ...], list[int]] = {}
for _q in range(100, 0, -1):
    _LUMA_QUALITIES.setdefault(_scaled(_STD_LUMA, _q), []).append(_q)


def estimate_jpeg_quality(im: Image.Image) -> int | None:
    """The libjpeg quality (1-100) a JPEG was saved with, if it uses the standard tables; else None."""
    tables = getattr(im, "quantization", None) or {}
    luma, chroma = tables.get(0), tables.get(1)
    if luma is None or len(luma) != 64:
        return None
    for q in _LUMA_QUALITIES.get(tuple(luma), ()):
        if chroma is None or tuple(chroma) == _scaled(_STD_CHROMA, q):
            return q
    return None


def build_request(
    job: Job,
    profile: Any,
    max_edge: int,
    jpeg_quality: int,
    orientation: Orientation | None = None,
    prepared: bytes | None = None,
) -> SubmitRequest:
    """What the platform is sent for this job: the prepared photo (none for a text-only endpoint), the effective
    profile (the job's choice applied: ``with_choice``), and the prompt and params with the job's allowed remote
    overrides. Raises PermanentError when the photo is gone or unreadable, or the choice no longer exists.
    `prepared`: the upload already made from this photo with these settings (agent/steps/ahead.py)."""
    try:
        profile = with_choice(profile, job.choice)
    except KeyError as e:
        raise PermanentError(str(e.args[0]), kind="error") from None
    upload = b""
    if profile.sends_photo() and prepared is not None:
        upload = prepared
    elif profile.sends_photo():
        try:
            photo = Path(job.capture_path).read_bytes()
        except FileNotFoundError:
            raise PermanentError(f"the captured photo is missing: {job.capture_path}", kind="storage") from None
        try:
            upload = prepare_upload(photo, max_edge, jpeg_quality, orientation=orientation)
        except (PrepareError, OSError, ValueError) as e:
            raise PermanentError(f"could not prepare the photo: {e}", kind="storage") from None
    params = {**profile.params, **{k: v for k, v in job.params.items() if k != "prompt"}}
    prompt = job.params.get("prompt", profile.prompt)
    return SubmitRequest(image=upload, image_name=f"{job.id}.jpg", profile=profile, prompt=prompt, params=params)
