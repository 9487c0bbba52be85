"""The kiosk's Print button through the real print service and a real CUPS queue (cups-pdf), in headless
Chromium: the guest reads what the print is really doing (held for paper, printed), a second tap never makes a
second print or a "did not work", and each refusal of a limit is said in a guest's words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import SIZES, chromium, kiosk_page, open_kiosk, shoot, wait_js, wait_screen
from tests.support.configs import base_config, merge, write_config
from tests.support.cups import PdfQueue
from tests.support.printing import booth, printer_config, wait_print

DISPLAY = {"countdown_s": 1, "attract_slideshow": False, "result_timeout_s": 120}


@pytest.fixture(scope="module")
def queue() -> Iterator[PdfQueue]:
    with PdfQueue("ea-kiosk") as q:
        yield q


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    with kiosk_page(browser) as pg:
        yield pg


def start(tmp_path: Path, sim: Any, queue: PdfQueue, **printer: Any) -> Any:
    over = {"display": DISPLAY, "printer": printer_config(queue.name, **printer)}
    return booth(write_config(tmp_path / "config.toml", merge(base_config(tmp_path, sim.url), over)))


def to_result(page: Any, url: str) -> None:
    open_kiosk(page, url)
    page.click("#s-attract button.primary")
    page.click("#cards .card >> nth=0")
    wait_screen(page, "result", 30_000)
    page.wait_for_selector("#r-print:not([hidden])")


def note(page: Any) -> str:
    return page.inner_text("#r-note") if page.is_visible("#r-note") else ""


def test_a_print_held_for_paper_then_printed_and_a_second_tap(
    tmp_path: Path, sim: Any, queue: PdfQueue, page: Any
) -> None:
    queue.disable("media-empty")
    try:
        with start(tmp_path, sim, queue, cooldown_s=600) as rt:
            to_result(page, rt.api.url)
            page.click("#r-print")
            page.click("#r-print", force=True, no_wait_after=True)  # a double tap: the button is already off
            wait_js(page, "/out of paper/.test(document.querySelector('#r-note').textContent)", 30_000)
            assert note(page).startswith("Your print is waiting")
            assert page.is_disabled("#r-print")  # while this photo's print is on its way
            shoot(page, "print-held")
            prints = rt.agent.printer.store.for_job(
                page.evaluate("JSON.parse(sessionStorage.getItem('edge-agent.kiosk.current')).job")
            )
            assert len(prints) == 1 and prints[0].state.value == "held"  # one print, not two

            queue.enable()
            wait_print(rt.agent, prints[0].id)
            wait_js(
                page, "document.querySelector('#r-note').textContent === 'Printed — take it from the printer'", 30_000
            )
            assert page.is_enabled("#r-print")
            shoot(page, "print-printed", {"1024x600": SIZES["1024x600"]})

            page.click("#r-print")  # again, within the cool-down: a moment, not a failure
            wait_js(
                page, "document.querySelector('#r-note').textContent === 'One moment, printing has already started.'"
            )
            assert "did not work" not in note(page)
            assert page.is_enabled("#r-print")
    finally:
        queue.enable()


def test_the_per_job_limit_is_said_as_no_more_prints_of_this_photo(
    tmp_path: Path, sim: Any, queue: PdfQueue, page: Any
) -> None:
    with start(tmp_path, sim, queue, max_prints_per_job=1) as rt:
        to_result(page, rt.api.url)
        page.click("#r-print")
        wait_js(page, "document.querySelector('#r-note').textContent === 'Printed — take it from the printer'", 40_000)
        page.click("#r-print")
        wait_js(page, "document.querySelector('#r-note').textContent === 'No more prints of this photo.'")
        page.click("#lang")
        assert page.inner_text("#r-note") == "这张照片不能再打印了。"
        shoot(page, "print-limit-zh", {"1024x600": SIZES["1024x600"]})
