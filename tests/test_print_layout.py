"""The page that comes out of a real CUPS queue (cups-pdf): its size is the configured paper, the photo sits where
the layout puts it, and an unset media follows the queue's own default."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from agent.commands import Command
from tests.support.cups import PdfQueue, page_png, page_size_pt
from tests.support.printing import VIVID, booth, done_job, printer_config, two_tone, wait_print

MM = 72 / 25.4


@pytest.fixture(scope="module")
def queue():
    with PdfQueue("ea-layout") as q:
        yield q


def _print(config_file, queue: PdfQueue, image: bytes, **printer: object) -> tuple[Path, object]:
    cfg = config_file(profiles=[VIVID], printer=printer_config(queue.name, **printer))
    with booth(cfg) as rt:
        agent = rt.agent
        job = done_job(agent, image)
        answer = agent.request(Command("print", "cli", job_id=job.id)).result(timeout=5)
        assert answer["state"] == "queued"
        rec = wait_print(agent, answer["print_id"])
        return queue.output(rec.cups_job_id), rec


def _colour(px: tuple[int, ...]) -> str:
    r, g, b = px[:3]
    if min(r, g, b) > 235:
        return "white"
    if r > 150 and g < 110 and b < 110:
        return "red"
    if b > 150 and r < 110 and g < 130:
        return "blue"
    return f"other{px[:3]}"


def test_4x6_fill_with_margins_puts_the_photo_inside_a_white_border(config_file, queue, tmp_path: Path) -> None:
    pdf, _ = _print(config_file, queue, two_tone((600, 800)), media="4x6in", margin_mm=5, fit="fill")
    w, h = page_size_pt(pdf)
    assert (round(w), round(h)) == (288, 432)  # 4x6 in, not the queue's A4
    png = Image.open(page_png(pdf, tmp_path / "page", dpi=50)).convert("RGB")
    assert png.size == (200, 300)
    m = round(5 / 25.4 * 50)  # the 5 mm border at 50 dpi: 10 px
    for x, y in ((m // 2, 150), (199 - m // 2, 150), (100, m // 2), (100, 299 - m // 2)):
        assert _colour(png.getpixel((x, y))) == "white", (x, y)
    # the photo fills the inside: red top half, blue bottom half, to the border
    assert _colour(png.getpixel((100, m + 5))) == "red"
    assert _colour(png.getpixel((m + 3, 100))) == "red"
    assert _colour(png.getpixel((100, 299 - m - 5))) == "blue"
    assert _colour(png.getpixel((199 - m - 3, 250))) == "blue"


def test_a_landscape_photo_fitted_on_a6_is_turned_to_the_paper(config_file, queue, tmp_path: Path) -> None:
    pdf, _ = _print(config_file, queue, two_tone((900, 450)), media="A6", fit="fit")
    w, h = page_size_pt(pdf)
    assert (round(w / MM), round(h / MM)) == (105, 148)
    png = Image.open(page_png(pdf, tmp_path / "page", dpi=50)).convert("RGB")
    pw, ph = png.size
    # a 2:1 photo on the 148x105 mm landscape canvas, whole (fit): full length, bands across; turned a quarter
    # (counter-clockwise) onto the upright paper: its left half (red) at the bottom, its right half (blue) on top
    assert _colour(png.getpixel((pw // 2, ph // 4))) == "blue"
    assert _colour(png.getpixel((pw // 2, 3 * ph // 4))) == "red"
    assert _colour(png.getpixel((3, ph // 2))) == "white"  # the bands fit leaves on the short sides
    assert _colour(png.getpixel((pw - 4, ph // 2))) == "white"


def test_a_2x6_strip_and_10x15cm_come_out_at_their_size(config_file, queue) -> None:
    pdf, _ = _print(config_file, queue, two_tone((400, 1200)), media="2x6in")
    assert tuple(round(v) for v in page_size_pt(pdf)) == (144, 432)
    pdf, _ = _print(config_file, queue, two_tone((600, 800)), media="10x15cm")
    assert tuple(round(v / MM) for v in page_size_pt(pdf)) == (100, 150)


def test_without_media_the_queue_default_is_used(config_file, queue) -> None:
    pdf, _ = _print(config_file, queue, two_tone((600, 800)))
    assert tuple(round(v) for v in page_size_pt(pdf)) == (595, 842)  # the cups-pdf PPD's default: A4


def test_the_overlay_frame_logo_and_event_text_are_on_the_page(config_file, queue, tmp_path: Path) -> None:
    frame = Image.new("RGBA", (400, 600), (0, 160, 0, 255))  # a green frame, clear inside
    frame.paste((0, 0, 0, 0), (40, 40, 360, 560))
    frame.save(tmp_path / "frame.png")
    logo = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    logo.paste((255, 200, 0, 255), (10, 10, 90, 90))
    logo.save(tmp_path / "logo.png")
    overlay = {
        "frame": str(tmp_path / "frame.png"),
        "logo": str(tmp_path / "logo.png"),
        "text": "Anna & Ben",
        "date_format": "%Y-%m-%d",
    }
    pdf, _ = _print(config_file, queue, two_tone((600, 800)), media="4x6in", overlay=overlay)
    png = Image.open(page_png(pdf, tmp_path / "page", dpi=50)).convert("RGB")
    r, g, b = png.getpixel((3, 150))
    assert g > 120 and r < 80 and b < 80  # the frame's edge covers the photo
    r, g, b = png.getpixel((200 - 10 - 12, 10 + 12))  # the logo's yellow in the top right corner
    assert r > 200 and g > 150 and b < 80
    # the event text near the bottom: dark letters on a light band, where the frame alone would be green
    band = png.crop((40, 300 - 30, 160, 300 - 4))
    dark = sum(1 for x in range(band.width) for y in range(band.height) if max(band.getpixel((x, y))[:3]) < 90)
    assert dark > 20
