"""The page: a result placed on the configured paper at the printer's resolution, rendered with Pillow to a
one-page PDF whose page is exactly the paper, so CUPS passes it through unscaled.

The paper is always described upright (portrait). A landscape photo is laid out on a landscape canvas (so a frame
or text designed for it reads the right way) and the finished canvas is turned a quarter to sit on the paper.
`media` goes to `lp` as a PWG self-describing name (``na_index-4x6_4x6in``): CUPS maps it to whatever the
driver calls that size (``4x6``, ``w288h432``, ``Custom.4x6in``), which a driver-specific name could not do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

MM_PER_IN = 25.4


@dataclass(frozen=True)
class Media:
    name: str  # the config value
    width_mm: float  # upright
    height_mm: float
    pwg: str  # what `lp -o media=` gets

    def pixels(self, dpi: int) -> tuple[int, int]:
        return round(self.width_mm / MM_PER_IN * dpi), round(self.height_mm / MM_PER_IN * dpi)

    @property
    def points(self) -> tuple[float, float]:
        return self.width_mm / MM_PER_IN * 72, self.height_mm / MM_PER_IN * 72


MEDIA = {
    m.name: m
    for m in (
        Media("4x6in", 101.6, 152.4, "na_index-4x6_4x6in"),
        Media("10x15cm", 100.0, 150.0, "om_small-photo_100x150mm"),
        Media("2x6in", 50.8, 152.4, "oe_photo-2x6_2x6in"),
        Media("A6", 105.0, 148.0, "iso_a6_105x148mm"),
    )
}
# what a queue's own default PageSize may be called (PPD names) -> its size, for a queue left at its default
PPD_SIZES_MM = {
    "A4": (210.0, 297.0),
    "A5": (148.0, 210.0),
    "A6": (105.0, 148.0),
    "Letter": (215.9, 279.4),
    "4x6": (101.6, 152.4),
    "w288h432": (101.6, 152.4),
    "Postcard": (100.0, 148.0),
}


def media_for_default(page_size: str | None) -> Media:
    """The queue's default PageSize as a Media (sent without a media option: the queue keeps its own)."""
    name = (page_size or "").removeprefix("Custom.")
    if name in MEDIA:
        return MEDIA[name]
    if name in PPD_SIZES_MM:
        w, h = PPD_SIZES_MM[name]
        return Media(name, w, h, "")
    return Media("A4", 210.0, 297.0, "")  # CUPS's own fallback when a queue says nothing


@dataclass(frozen=True)
class Overlay:
    frame: Path | None = None
    logo: Path | None = None
    text: str = ""
    date_format: str = ""
    font: Path | None = None


@dataclass(frozen=True)
class PageSpec:
    media: Media
    dpi: int = 300
    margin_mm: float = 0.0
    fit: str = "fill"  # fill | fit
    overlay: Overlay = Overlay()


def compose(photo: Image.Image, spec: PageSpec, *, when: float | None = None) -> Image.Image:
    """The page as an upright RGB image of exactly the paper's pixels at spec.dpi."""
    pw, ph = spec.media.pixels(spec.dpi)
    photo = ImageOps.exif_transpose(photo).convert("RGB")
    landscape = photo.width > photo.height and pw < ph
    cw, ch = (ph, pw) if landscape else (pw, ph)
    page = Image.new("RGB", (cw, ch), "white")
    m = round(spec.margin_mm / MM_PER_IN * spec.dpi)
    box = (max(1, cw - 2 * m), max(1, ch - 2 * m))
    if spec.fit == "fill":
        placed = ImageOps.fit(photo, box, Image.Resampling.LANCZOS)
    else:
        placed = ImageOps.contain(photo, box, Image.Resampling.LANCZOS)
    page.paste(placed, (m + (box[0] - placed.width) // 2, m + (box[1] - placed.height) // 2))
    _overlay(page, spec.overlay, when)
    return page.transpose(Image.Transpose.ROTATE_90) if landscape else page


def _overlay(page: Image.Image, ov: Overlay, when: float | None) -> None:
    if ov.frame is not None:
        with Image.open(ov.frame) as f:
            frame = f.convert("RGBA").resize(page.size, Image.Resampling.LANCZOS)
        page.paste(frame, (0, 0), frame)  # its alpha decides where the photo shows through
    if ov.logo is not None:
        with Image.open(ov.logo) as f:
            logo = f.convert("RGBA")
        logo = ImageOps.contain(logo, (page.width // 5, page.height // 5), Image.Resampling.LANCZOS)
        pad = page.width // 40
        page.paste(logo, (page.width - logo.width - pad, pad), logo)
    words = ov.text
    if ov.date_format:
        words = f"{words}  {time.strftime(ov.date_format, time.localtime(when))}".strip()
    if words:
        size = max(10, page.height // 28)
        font = ImageFont.truetype(str(ov.font), size) if ov.font else ImageFont.load_default(size)
        draw = ImageDraw.Draw(page)
        left, top, right, bottom = (round(v) for v in draw.textbbox((0, 0), words, font=font))
        x = (page.width - (right - left)) // 2
        y = page.height - (bottom - top) - page.height // 30
        pad = size // 3
        band = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (255, 255, 255, 180))
        page.paste(band, (x - pad, y - pad), band)
        draw.text((x - left, y - top), words, fill="black", font=font)


def render_pdf(photo_path: Path, spec: PageSpec, out: Path, *, when: float | None = None) -> Path:
    """Write the print-ready page to `out` (a PDF whose page is the paper at spec.dpi)."""
    with Image.open(photo_path) as photo:
        page = compose(photo, spec, when=when)
    tmp = out.with_name(out.name + ".tmp")
    page.save(tmp, "PDF", resolution=float(spec.dpi), quality=92)
    tmp.replace(out)
    return out
