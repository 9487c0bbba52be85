"""A generated, changing test scene: the camera for demos, CI and a booth whose real camera is not wired yet.

Every capture differs (moving shapes, a capture counter, the time to the millisecond), so uploads hash
differently and a technician can tell one result from the next. The gradient and the colour bars are drawn once
per size and copied, with the fixed caption; the changing text is pasted from cached glyphs (a stroked FreeType
render of a whole line cost more than the rest of the capture). No numpy: the demo booth does not need it loaded.
"""

from __future__ import annotations

import itertools
import math
import time
from datetime import datetime
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageFont

from hardware.camera.base import Camera, CameraSpec, fit_within

KEEP_PIXELS = 640 * 480  # backgrounds this small are kept (preview frames); larger ones are made per still
_BARS = [(235, 235, 235), (235, 235, 16), (16, 235, 235), (16, 235, 16), (235, 16, 235), (235, 16, 16), (16, 16, 235)]


class SyntheticCamera(Camera):
    driver = "synthetic"
    can_hang = False  # drawing only: no device that could stop answering

    def __init__(self, cfg: CameraSpec) -> None:
        super().__init__(cfg)
        self._numbers = itertools.count(1)
        self._backgrounds: dict[tuple[int, int], Image.Image] = {}
        self._fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}
        self._glyphs: dict[
            tuple[str, int], tuple[Image.Image, Image.Image, int]
        ] = {}  # (char, px) -> fill, edge, advance

    def _open_handle(self) -> Any:
        return "synthetic"  # nothing to open

    def _still(self, handle: Any) -> Image.Image:
        return self._render(self.cfg.width, self.cfg.height, f"#{next(self._numbers):06d}")

    def _preview(self, handle: Any, max_edge: int) -> Image.Image:
        w, h = fit_within(self.cfg.width, self.cfg.height, max_edge, max_edge)
        return self._render(w, h, "LIVE")

    def _describe(self) -> str:
        return f"synthetic {self.cfg.width}x{self.cfg.height}"

    # ------------------------------------------------------------------------------------------ drawing

    def _render(self, w: int, h: int, label: str) -> Image.Image:
        now = time.time()
        im = self._background(w, h)
        if (w, h) in self._backgrounds:
            im = im.copy()  # the kept one stays clean
        draw = ImageDraw.Draw(im)
        unit = min(w / 1920, h / 1080)  # everything is laid out for 1920x1080 and scaled
        t = now % 3600.0

        # a ball on a Lissajous path, a sliding square and a spinning triangle
        r = 90 * unit
        cx, cy = w / 2 + 0.32 * w * math.cos(t * 0.9), h / 2 + 0.30 * h * math.sin(t * 1.3)
        line = max(1, round(4 * unit))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(250, 200, 40), outline=(0, 0, 0), width=line)
        side = 140 * unit
        sx = (w - side) * (0.5 + 0.5 * math.sin(t * 0.7))
        sy = h * 0.62
        draw.rectangle((sx, sy, sx + side, sy + side), fill=(40, 120, 250), outline=(255, 255, 255), width=line)
        tx, ty, tr = w * 0.78, h * 0.28, 120 * unit
        tri = [(tx + tr * math.cos(t * 2.0 + k * 2.094), ty + tr * math.sin(t * 2.0 + k * 2.094)) for k in range(3)]
        draw.polygon(tri, fill=(230, 60, 90))

        stamp = datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        self._line(im, (60 * unit, 50 * unit), label, round(200 * unit))
        self._line(im, (64 * unit, 290 * unit), stamp, round(72 * unit))
        return im

    def _background(self, w: int, h: int) -> Image.Image:
        """The card without the moving parts. Kept for preview sizes (many frames a second); a still's is made
        again each time (at 1920x1080 it is 8 MB, and a still is taken a few times a minute)."""
        bg = self._backgrounds.get((w, h))
        if bg is None:
            bg = _gradient(w, h)
            draw = ImageDraw.Draw(bg)
            bar_w, top = w / len(_BARS), h * 0.9
            for i, colour in enumerate(_BARS):
                draw.rectangle((round(i * bar_w), round(top), round((i + 1) * bar_w) - 1, h - 1), fill=colour)
            unit = min(w / 1920, h / 1080)
            caption = f"edge-agent synthetic camera {self.cfg.width}x{self.cfg.height}"
            self._line(bg, (64 * unit, 380 * unit), caption, round(40 * unit))
            if w * h <= KEEP_PIXELS:
                if len(self._backgrounds) >= 4:  # never let odd sizes pile up
                    self._backgrounds.clear()
                self._backgrounds[(w, h)] = bg
        return bg

    def _font(self, px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        font = self._fonts.get(px)
        if font is None:
            font = self._fonts[px] = ImageFont.load_default(size=px)
        return font

    def _line(self, im: Image.Image, xy: tuple[float, float], text: str, px: int) -> None:
        """White text with a black edge, glyph by glyph from the cache (no kerning: a test card needs none)."""
        px = max(8, px)
        font = self._font(px)
        if not isinstance(font, ImageFont.FreeTypeFont):
            self._bitmap_text(im, font, xy, text, px)
            return
        x, y = round(xy[0]), round(xy[1])
        for ch in text:
            fill, edge, advance = self._glyph(ch, px)
            im.paste((0, 0, 0), (x, y), edge)
            im.paste((255, 255, 255), (x, y), fill)
            x += advance

    def _glyph(self, ch: str, px: int) -> tuple[Image.Image, Image.Image, int]:
        got = self._glyphs.get((ch, px))
        if got is None:
            font = self._font(px)
            stroke = max(1, px // 24)
            left, top, right, bottom = font.getbbox(ch, stroke_width=stroke)
            size = (max(1, int(right)), max(1, int(bottom)))
            fill, edge = Image.new("L", size, 0), Image.new("L", size, 0)
            ImageDraw.Draw(edge).text((0, 0), ch, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
            ImageDraw.Draw(fill).text((0, 0), ch, font=font, fill=255)
            got = (fill, edge, round(font.getlength(ch)))
            if len(self._glyphs) >= 512:  # a few sizes of ~20 characters; odd sizes must not pile up
                self._glyphs.clear()
            self._glyphs[(ch, px)] = got
        return got

    @staticmethod
    def _bitmap_text(im: Image.Image, font: ImageFont.ImageFont, xy: tuple[float, float], text: str, px: int) -> None:
        """Pillow without FreeType: the small bitmap font, drawn once and scaled up."""
        left, top, right, bottom = font.getbbox(text)
        mask = Image.new("L", (int(right), int(bottom)), 0)
        ImageDraw.Draw(mask).text((0, 0), text, font=font, fill=255)
        scale = max(1, px // max(1, int(bottom)))
        mask = mask.resize((mask.width * scale, mask.height * scale), Image.Resampling.NEAREST)
        ImageDraw.Draw(im).bitmap((round(xy[0]), round(xy[1])), mask, fill=(255, 255, 255))


def _gradient(w: int, h: int) -> Image.Image:
    """The test card's colour field: red grows to the right (less towards the bottom), green downwards, blue
    towards the bottom left. Made at an eighth of the size and scaled up: it is smooth, and that is ten times
    cheaper."""
    sw, sh = max(2, w // 8), max(2, h // 8)
    across = Image.linear_gradient("L").rotate(90).resize((sw, sh))
    down = Image.linear_gradient("L").resize((sw, sh))
    red = ImageChops.multiply(across, down.point(lambda v: 255 - v // 2)).point(lambda v: 30 + v * 150 // 255)
    green = down.point(lambda v: 40 + v * 110 // 255)
    blue = ImageChops.add(across.point(lambda v: 150 - v * 90 // 255), down.point(lambda v: v * 60 // 255))
    return Image.merge("RGB", (red, green, blue)).resize((w, h), Image.Resampling.BILINEAR)
