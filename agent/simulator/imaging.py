"""The simulator's "GPU": cheap, real image and video transforms (Pillow, numpy, optionally OpenCV).

Every output is a real picture derived from the upload so a demo shows something recognisable and a test can
check size, aspect ratio and that pixels changed. The model / workflow name picks the effect (`pick_effect`):
a known keyword wins ("cartoon", "sketch", "sepia", ...), anything else maps to an effect by a stable hash.
Work is done at the output size (never above 2048 px on the long edge) so it stays quick on a Raspberry Pi.
"""

from __future__ import annotations

import io
import math
import textwrap
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps, PngImagePlugin

MAX_EDGE = 2048  # outputs never exceed this on the long edge ("4K" is honoured loosely)
MAX_INPUT_PIXELS = 60_000_000  # refuse decompression bombs before decoding
VIDEO_EDGE = 320  # videos are small: a handful of frames at this long edge

EFFECTS: tuple[str, ...] = ("cartoon", "sepia", "invert", "sketch", "mono", "pixel", "vivid", "dream", "mirror")
_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("cartoon", "cartoon"),
    ("anime", "cartoon"),
    ("toon", "cartoon"),
    ("comic", "cartoon"),
    ("sketch", "sketch"),
    ("pencil", "sketch"),
    ("line", "sketch"),
    ("sepia", "sepia"),
    ("vintage", "sepia"),
    ("retro", "sepia"),
    ("invert", "invert"),
    ("negative", "invert"),
    ("mono", "mono"),
    ("gray", "mono"),
    ("grey", "mono"),
    ("noir", "mono"),
    ("pixel", "pixel"),
    ("8bit", "pixel"),
    ("vivid", "vivid"),
    ("pop", "vivid"),
    ("dream", "dream"),
    ("soft", "dream"),
    ("glow", "dream"),
    ("mirror", "mirror"),
    ("flip", "mirror"),
)
_TINTS = ((255, 120, 80), (80, 160, 255), (120, 220, 120), (230, 200, 60))  # per-variant tint for n > 1


class ImageDecodeError(ValueError):
    """The bytes are not an image Pillow can read (or are absurdly large)."""


def pick_effect(name: str | None) -> str:
    low = (name or "").lower()
    for keyword, effect in _KEYWORDS:
        if keyword in low:
            return effect
    return EFFECTS[zlib.crc32(low.encode()) % len(EFFECTS)]


def probe(data: bytes) -> tuple[int, int] | None:
    """The (width, height) of an image without decoding it, or None when it is not an image."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:
        return None


def open_photo(data: bytes, long_edge_hint: int | None = None) -> Image.Image:
    """Decode an upload to RGB, upright (EXIF), letting JPEG decode at reduced size when that is enough."""
    try:
        im: Image.Image = Image.open(io.BytesIO(data))
        w, h = im.size
        if w * h > MAX_INPUT_PIXELS or w < 1 or h < 1:
            raise ImageDecodeError(f"image too large to process ({w}x{h})")
        if long_edge_hint and im.format == "JPEG":
            scale = long_edge_hint / max(w, h)
            if scale < 1:
                im.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            bg = Image.new("RGB", im.size, (255, 255, 255))
            bg.paste(im, mask=im.getchannel("A"))
            return bg
        return im.convert("RGB")
    except ImageDecodeError:
        raise
    except Exception as e:  # Pillow raises many kinds; the caller only needs "not an image"
        raise ImageDecodeError(f"cannot decode image: {e}") from None


def parse_resolution(value: str | None) -> int | None:
    """'1K' / '2K' / '4K' (or a pixel count) -> target long edge, capped at MAX_EDGE; None = keep the input."""
    if not value:
        return None
    v = str(value).strip().upper()
    try:
        px = int(float(v[:-1]) * 1024) if v.endswith("K") else int(v)
    except (ValueError, OverflowError):
        return None
    return max(16, min(MAX_EDGE, px)) if px > 0 else None


def parse_size(size: str | None, aspect_ratio: str | None, default_edge: int = 1024) -> tuple[int, int]:
    """OpenAI-style 'WxH' or an 'a:b' aspect ratio -> an output size within MAX_EDGE."""
    w = h = 0
    if size and "x" in str(size).lower():
        try:
            a, b = str(size).lower().split("x", 1)
            w, h = int(a), int(b)
        except (ValueError, OverflowError):
            w = h = 0
    if (w <= 0 or h <= 0) and aspect_ratio and ":" in str(aspect_ratio):
        try:
            ra, rb = (float(x) for x in str(aspect_ratio).split(":", 1))
            if ra > 0 and rb > 0:
                if ra >= rb:
                    w, h = default_edge, round(default_edge * rb / ra)
                else:
                    w, h = round(default_edge * ra / rb), default_edge
        except (ValueError, OverflowError, ZeroDivisionError):
            w = h = 0
    if w <= 0 or h <= 0:
        w = h = default_edge
    return fit(w, h, min(MAX_EDGE, max(w, h)))


def fit(w: int, h: int, long_edge: int) -> tuple[int, int]:
    scale = long_edge / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def output_size(w: int, h: int, long_edge: int | None) -> tuple[int, int]:
    if long_edge is None:
        return (w, h) if max(w, h) <= MAX_EDGE else fit(w, h, MAX_EDGE)
    return fit(w, h, min(long_edge, MAX_EDGE))


# ------------------------------------------------------------------------------------------------- effects


def apply_effect(img: Image.Image, effect: str, variant: int = 0) -> Image.Image:
    out = _EFFECT_FUNCS.get(effect, _sepia)(img)
    if variant:
        tint = Image.new("RGB", out.size, _TINTS[(variant - 1) % len(_TINTS)])
        out = Image.blend(out, tint, 0.15)
    return out


def _cartoon(img: Image.Image) -> Image.Image:
    w, h = img.size
    small = img.resize((max(1, w // 4), max(1, h // 4)), Image.Resampling.BOX)
    smooth = small.resize((w, h), Image.Resampling.BILINEAR)
    flat = ImageOps.posterize(ImageEnhance.Color(smooth).enhance(1.4), 3)
    edges = img.convert("L").filter(ImageFilter.FIND_EDGES).point(lambda v: 0 if v > 40 else 255)
    return Image.composite(flat, Image.new("RGB", (w, h), (20, 20, 20)), edges)


def _sepia(img: Image.Image) -> Image.Image:
    return ImageOps.colorize(ImageOps.grayscale(img), black="#2b1a0d", white="#f7e8c9", mid="#a67c52")


def _invert(img: Image.Image) -> Image.Image:
    return ImageOps.invert(img)


def _soft_blur(img: Image.Image, radius: float) -> Image.Image:
    """A wide Gaussian blur done at quarter size: looks the same, costs a fraction on a Pi."""
    w, h = img.size
    if min(w, h) < 64:
        return img.filter(ImageFilter.GaussianBlur(radius))
    small = img.resize((w // 4, h // 4), Image.Resampling.BOX).filter(ImageFilter.GaussianBlur(max(1.0, radius / 4)))
    return small.resize((w, h), Image.Resampling.BILINEAR)


def _sketch(img: Image.Image) -> Image.Image:
    gray = np.asarray(ImageOps.grayscale(img), dtype=np.float32)
    blurred = np.asarray(
        _soft_blur(Image.fromarray((255 - gray).astype(np.uint8)), max(2, img.width // 150)), dtype=np.float32
    )
    dodge = np.clip(gray * 255.0 / np.maximum(1.0, 255.0 - blurred), 0, 255).astype(np.uint8)
    return Image.fromarray(dodge).convert("RGB")


def _mono(img: Image.Image) -> Image.Image:
    return ImageOps.autocontrast(ImageOps.grayscale(img), cutoff=2).convert("RGB")


def _pixel(img: Image.Image) -> Image.Image:
    w, h = img.size
    block = max(2, max(w, h) // 48)
    small = img.resize((max(1, w // block), max(1, h // block)), Image.Resampling.BOX)
    return ImageOps.posterize(small.resize((w, h), Image.Resampling.NEAREST), 4)


def _vivid(img: Image.Image) -> Image.Image:
    return ImageEnhance.Contrast(ImageEnhance.Color(img).enhance(2.2)).enhance(1.3)


def _dream(img: Image.Image) -> Image.Image:
    glow = _soft_blur(img, max(2, img.width // 120))
    soft = Image.blend(img, glow, 0.6)
    return Image.blend(ImageEnhance.Brightness(soft).enhance(1.15), Image.new("RGB", img.size, (255, 170, 220)), 0.12)


def _mirror(img: Image.Image) -> Image.Image:
    return ImageEnhance.Color(ImageOps.mirror(img)).enhance(1.3)


_EFFECT_FUNCS = {
    "cartoon": _cartoon,
    "sepia": _sepia,
    "invert": _invert,
    "sketch": _sketch,
    "mono": _mono,
    "pixel": _pixel,
    "vivid": _vivid,
    "dream": _dream,
    "mirror": _mirror,
}


# ------------------------------------------------------------------------------------------------- renders


def edit(
    photo: Image.Image, effect: str, n: int, long_edge: int | None, mask: bytes | None = None
) -> list[Image.Image]:
    """n transformed copies of `photo` (aspect ratio kept). With a mask, only its edit region changes:
    transparent pixels (OpenAI style) or, for a mask without alpha, white pixels (ComfyUI style)."""
    size = output_size(photo.width, photo.height, long_edge)
    base = photo if photo.size == size else photo.resize(size, Image.Resampling.LANCZOS)
    region = _mask_region(mask, size) if mask else None
    outs = []
    for k in range(max(1, n)):
        out = apply_effect(base, effect, k)
        outs.append(Image.composite(out, base, region) if region is not None else out)
    return outs


def _mask_region(mask: bytes, size: tuple[int, int]) -> Image.Image | None:
    try:
        m = Image.open(io.BytesIO(mask))
        m.load()
    except Exception:
        return None  # an unreadable mask is ignored, like many workflows do
    if m.mode in ("RGBA", "LA", "PA") or (m.mode == "P" and "transparency" in m.info):
        region = ImageOps.invert(m.convert("RGBA").getchannel("A"))
    else:
        region = m.convert("L")
    return region.resize(size, Image.Resampling.NEAREST).point(lambda v: 255 if v >= 128 else 0)


def text_to_image(prompt: str, size: tuple[int, int], effect: str, variant: int = 0) -> Image.Image:
    """A generated picture: a gradient and shapes seeded by the prompt, with the prompt written on it."""
    w, h = size
    seed = zlib.crc32(f"{prompt}|{variant}".encode())
    rng = np.random.default_rng(seed)
    c1, c2 = rng.integers(30, 230, size=3), rng.integers(30, 230, size=3)
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    grad = (c1[None, None, :] * (1 - t) + c2[None, None, :] * t).astype(np.uint8)
    img = Image.fromarray(np.broadcast_to(grad, (h, w, 3)).copy())
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        r = int(rng.integers(max(2, min(w, h) // 12), max(3, min(w, h) // 4)))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        fill = tuple(int(v) for v in rng.integers(0, 256, size=3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    img = apply_effect(img, effect, 0) if effect in ("cartoon", "pixel", "dream") else img
    draw = ImageDraw.Draw(img)
    font = _font(max(12, w // 28))
    lines = textwrap.wrap(prompt or "(no prompt)", width=max(10, int(w / (font_size(font) * 0.55))))[:6]
    y = h - (len(lines) + 1) * int(font_size(font) * 1.3)
    draw.rectangle((0, y - 8, w, h), fill=(0, 0, 0))
    for line in lines:
        draw.text((12, y), line, fill=(255, 255, 255), font=font)
        y += int(font_size(font) * 1.3)
    return img


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except Exception:  # Pillow < 10.1 or no FreeType: the small bitmap font
        return ImageFont.load_default()


def font_size(font: object) -> int:
    return int(getattr(font, "size", 11))


def encode_png(img: Image.Image, pad_to: int = 0) -> bytes:
    """PNG bytes; with pad_to, a private ancillary chunk makes the file at least that large (decoders skip it)."""
    info = None
    if pad_to:
        info = PngImagePlugin.PngInfo()
        info.add(b"siMp", b"\0" * pad_to)
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1, pnginfo=info)
    return buf.getvalue()


def write_video(path: Path, first: Image.Image, last: Image.Image | None, frames: int, fps: int = 8) -> tuple[str, str]:
    """A short real clip: a slow zoom into `first`, cross-fading to `last` when given.

    Written as MP4 (VP9, else OpenCV's `mp4v`) when OpenCV is installed, else as an animated GIF.
    Returns (content_type, extension) of what was written; `path` gets that extension.
    """
    w, h = fit(first.width, first.height, VIDEO_EDGE)
    w, h = max(2, w - w % 2), max(2, h - h % 2)
    a = first.resize((w, h), Image.Resampling.BILINEAR)
    b = last.resize((w, h), Image.Resampling.BILINEAR) if last is not None else None
    frames = max(2, min(48, frames))
    pics = []
    for i in range(frames):
        t = i / (frames - 1)
        z = 1.0 + 0.25 * t  # zoom factor
        cw, ch = max(1, int(w / z)), max(1, int(h / z))
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        frame = a.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.Resampling.BILINEAR)
        if b is not None:
            frame = Image.blend(frame, b, t)
        pics.append(frame)
    try:
        import cv2  # optional: python3-opencv on a Pi, the headless wheel elsewhere
    except ImportError:
        cv2 = None  # type: ignore[assignment]
    if cv2 is not None:
        out = path.with_suffix(".mp4")
        # VP9 in MP4 plays in every browser (Chromium without H.264 too) and needs no H.264 licence; OpenCV's
        # own `mp4v` (MPEG-4 Part 2) is the fallback for a build without libvpx, though browsers cannot play it
        for tag in ("vp09", "mp4v"):
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*tag), fps, (w, h))  # type: ignore[attr-defined]
            if writer.isOpened():
                for p in pics:
                    writer.write(np.asarray(p)[:, :, ::-1].copy())  # RGB -> BGR
                writer.release()
                if out.exists() and out.stat().st_size > 0:
                    return "video/mp4", ".mp4"
            writer.release()
    out = path.with_suffix(".gif")
    pics[0].save(out, "GIF", save_all=True, append_images=pics[1:], duration=math.ceil(1000 / fps), loop=0)
    return "image/gif", ".gif"


def tone_wav(prompt: str, seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A short real WAV (a tone whose pitch follows the prompt): the "audio" render."""
    import struct
    import wave

    freq = 220 + (sum(prompt.encode()) % 440)
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(int(seconds * rate))
    )
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()
