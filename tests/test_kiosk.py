"""The guest's screen in real headless Chromium against the agent and the simulator over real HTTP: a whole
flow, two guests at once, the offline screen, a language switch, the keyboard, the failure screens, and
touch-sized targets at the three screen sizes. Screenshots of each screen go to the artifacts folder."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import (
    SIZES,
    chromium,
    current_job,
    kiosk_booths,
    kiosk_page,
    open_kiosk,
    screen,
    shoot,
    small_targets,
    wait_js,
    wait_screen,
)
from tests.support.configs import base_config, merge, write_config

FAST_DISPLAY = {"countdown_s": 1, "attract_slideshow": True, "result_timeout_s": 120}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def booth(tmp_path: Path, sim: Any) -> Iterator[Any]:
    """booth(**config overrides) -> (agent, base url): the agent with its HTTP API, stopped at teardown."""
    with kiosk_booths(tmp_path, sim.url, FAST_DISPLAY) as make:
        yield make
    sim.configure(latency=0.2)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    with kiosk_page(browser) as pg:
        yield pg


def img_loaded(page: Any, selector: str) -> bool:
    return page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0")


def test_a_guests_whole_flow(booth: Any, page: Any, sim: Any) -> None:
    sim.configure(latency=4.0)  # long enough to see the waiting screen move
    agent, url = booth()
    open_kiosk(page, url)
    assert screen(page) == "attract"
    page.click("#s-attract button.primary")
    wait_screen(page, "choose")
    labels = page.locator("#cards .card .label").all_inner_texts()
    assert labels == ["Cartoon", "Oil", "Tryon"]  # /api/profiles absent here: the state's profile names
    shoot(page, "choose")
    page.click("#cards .card >> nth=1")  # oil: an async task that reports its progress
    wait_screen(page, "capture")
    assert page.inner_text("#count") == "1"
    shoot(page, "countdown", {"1024x600": SIZES["1024x600"]})
    wait_screen(page, "waiting")
    wait_js(page, "/^[1-9][0-9]? %$/.test(document.querySelector('#w-pct').textContent)", timeout=15_000)
    job_id = current_job(page)
    job = agent.store.get(job_id)
    assert job is not None and job.source == "kiosk" and job.profile == "oil"
    wait_js(page, "document.querySelector('#w-qr').naturalWidth > 0")  # the QR code before the result exists
    stage = page.inner_text("#w-stage")
    assert stage in ("Waiting in line", "Sending your photo", "The AI is at work", "Fetching your picture")
    shoot(page, "waiting")
    wait_screen(page, "result", 30_000)
    wait_js(page, "document.querySelector('#r-media img') && document.querySelector('#r-media img').naturalWidth > 0")
    assert img_loaded(page, "#r-qr")
    assert re.fullmatch(r"Back to the start in \d+ s", page.inner_text("#r-back"))
    shoot(page, "result")
    page.click("#s-result button.primary")  # Done
    wait_screen(page, "attract")
    page.wait_for_selector("#slide:not([hidden])")  # the slideshow shows the result just made
    shoot(page, "attract")


def test_touch_targets_and_fit_at_every_size(booth: Any, page: Any) -> None:
    agent, url = booth()
    open_kiosk(page, url)
    for name in ("attract", "choose"):
        if name == "choose":
            page.click("#s-attract button.primary")
            wait_screen(page, "choose")
        for label, (w, h) in SIZES.items():
            page.set_viewport_size({"width": w, "height": h})
            page.wait_for_timeout(50)
            assert small_targets(page) == [], (name, label)
            # nothing a guest needs is pushed off the screen
            overflow = page.evaluate(
                "() => [...document.querySelectorAll('.screen.active button')].filter(b => {"
                " const r = b.getBoundingClientRect(); return r.width && (r.bottom > innerHeight + 1 || r.right > innerWidth + 1); }).length"
            )
            assert overflow == 0, (name, label)


def test_two_guests_overlap_each_screen_follows_its_own_job(booth: Any, page: Any, sim: Any) -> None:
    sim.configure(latency=3.0)
    agent, url = booth()
    open_kiosk(page, url)
    page.click("#s-attract button.primary")
    page.click("#cards .card >> nth=0")
    wait_screen(page, "waiting")
    first = current_job(page)
    page.click("#s-waiting button.primary")  # the next guest starts while the first job runs
    wait_screen(page, "choose")
    page.click("#cards .card >> nth=1")
    wait_screen(page, "waiting")
    second = current_job(page)
    assert first != second
    assert agent.store.get(second).profile == "oil"
    page.wait_for_selector("#tray .chip")  # the first guest's job goes on in the tray
    shoot(page, "two-guests")
    page.wait_for_selector("#tray .chip.ready", timeout=20_000)
    wait_screen(page, "result", 20_000)  # the second guest's own result
    assert current_job(page) == second
    page.click("#tray .chip.ready")
    wait_screen(page, "result")
    assert current_job(page) == first
    src = page.get_attribute("#r-media img", "src")
    assert first in src


def test_offline_then_delivered_later(booth: Any, page: Any, sim: Any) -> None:
    agent, url = booth()
    open_kiosk(page, url)
    sim.stop()
    try:
        page.click("#s-attract button.primary")
        page.click("#cards .card >> nth=0")
        wait_screen(page, "waiting")
        wait_js(page, "document.querySelector('#s-waiting').dataset.kind === 'offline'", timeout=20_000)
        assert "saved" in page.inner_text("#w-body")
        wait_js(page, "document.querySelector('#w-qr').naturalWidth > 0")
        shoot(page, "offline")
    finally:
        sim.start()
    wait_screen(page, "result", 30_000)
    job = agent.store.get(current_job(page))
    assert job is not None and job.state.value == "done"


def test_language_switch(booth: Any, page: Any) -> None:
    agent, url = booth(display={**FAST_DISPLAY, "language": "en"})
    open_kiosk(page, url)
    assert page.inner_text("#s-attract h2") == "Become a work of art"
    page.click("#lang")
    assert page.inner_text("#s-attract h2") == "一秒变身艺术作品"
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    shoot(page, "attract-zh")
    page.click("#s-attract button.primary")
    wait_screen(page, "choose")
    assert page.inner_text("#choose-title") == "选择一种效果"
    page.click("#lang")
    assert page.inner_text("#choose-title") == "Choose an effect"


def test_default_language_and_operator_texts_from_config(booth: Any, page: Any) -> None:
    texts = {"zh-CN": {"attract.title": "欢迎来到展台"}, "en": {"attract.start": "Go"}}
    agent, url = booth(display={**FAST_DISPLAY, "language": "zh-CN", "texts": texts})
    open_kiosk(page, url)
    assert page.inner_text("#s-attract h2") == "欢迎来到展台"
    page.click("#lang")
    assert page.inner_text("#s-attract button.primary") == "Go"


def test_keyboard_space_takes_the_photo_escape_goes_back(booth: Any, page: Any) -> None:
    agent, url = booth()
    open_kiosk(page, url)
    page.keyboard.press("Space")
    wait_screen(page, "choose")
    page.keyboard.press("Escape")
    wait_screen(page, "attract")
    page.keyboard.press("Enter")
    wait_screen(page, "choose")
    page.keyboard.press("ArrowRight")  # focus moves to the second card
    page.keyboard.press("Space")
    wait_screen(page, "capture")
    wait_screen(page, "waiting")
    assert agent.store.get(current_job(page)).profile == "oil"


def test_consent_screen_when_enabled(booth: Any, page: Any) -> None:
    agent, url = booth(display={**FAST_DISPLAY, "consent": True})
    open_kiosk(page, url)
    page.click("#s-attract button.primary")
    page.click("#cards .card >> nth=0")
    wait_screen(page, "consent")
    shoot(page, "consent", {"1024x600": SIZES["1024x600"]})
    page.click("#s-consent button:not(.primary)")  # no thanks: no photo
    wait_screen(page, "choose")
    assert agent.store.counts() == {}


def test_disk_full_screen(booth: Any, page: Any) -> None:
    agent, url = booth(queue={"min_free_disk_mb": 10**9})
    open_kiosk(page, url)
    page.click("#s-attract button.primary")
    page.click("#cards .card >> nth=0")
    wait_screen(page, "error")
    assert page.inner_text("#e-title") == "The booth's storage is full"
    shoot(page, "error-disk")
    page.click("#s-error button.primary")
    wait_screen(page, "attract")


def test_camera_down_screen(booth: Any, page: Any, tmp_path: Path) -> None:
    broken = tmp_path / "not-a-photo.jpg"
    broken.write_text("this is not an image")
    agent, url = booth(camera={"driver": "file", "path": str(broken), "width": 320, "height": 240})
    open_kiosk(page, url)
    page.click("#s-attract button.primary")
    page.click("#cards .card >> nth=0")
    wait_screen(page, "error")
    assert page.inner_text("#e-title") == "The camera is not available"
    shoot(page, "error-camera", {"1024x600": SIZES["1024x600"]})


def test_failed_job_offers_retry(booth: Any, page: Any, sim: Any) -> None:
    failing = {**base_config(Path("."), sim.url)["profiles"][1], "prompt": "FAIL please"}  # the simulator fails it
    agent, url = booth(profiles=[failing])
    open_kiosk(page, url)
    page.click("#s-attract button.primary")  # one profile, no choices: straight to the countdown
    wait_screen(page, "failed", 30_000)
    shoot(page, "failed")
    job_id = current_job(page)
    page.click("#s-failed button.primary")
    wait_screen(page, "waiting")  # the same job, sent again
    assert current_job(page) == job_id
    wait_screen(page, "failed", 30_000)
    assert [h["state"] for h in agent.store.get(job_id).history].count("failed") == 2  # failed, retried, failed
    assert agent.mode == "error"  # the failure is shown to the technician (status, LEDs) ...
    page.keyboard.press("Escape")
    wait_screen(page, "attract")
    # ... but one failed photo does not turn the next guest away: the booth still invites them in
    assert page.is_visible("#s-attract button.primary") and not page.is_visible("#a-out")


def test_a_mistyped_text_key_names_file_and_key(tmp_path: Path, sim: Any) -> None:
    import subprocess
    import sys

    over = {"display": {"texts": {"en": {"attract.titel": "Hi"}}}}
    cfg = write_config(tmp_path / "config.toml", merge(base_config(tmp_path, sim.url), over))
    exe = Path(sys.executable).parent / "edge-agent"
    r = subprocess.run([str(exe), "check-config", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{cfg}: display.texts" in r.stderr and "'attract.titel'" in r.stderr and "attract.title" in r.stderr
    assert "Traceback" not in r.stderr
