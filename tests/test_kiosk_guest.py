"""What a guest meets at the kiosk beyond the happy path, in real headless Chromium against the agent and the
simulator over real HTTP: an out-of-order booth, the live preview, the waiting screen's words, the result screen
at 1024x600 with the tray, earlier guests' pictures leaving the screen, a video that plays (and one that cannot),
and no 404 for an icon. Printing through real CUPS is in test_kiosk_print.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import (
    SIZES,
    chromium,
    current_job,
    kiosk_booths,
    kiosk_page,
    open_kiosk,
    shoot,
    wait_js,
    wait_screen,
)
from tests.support.configs import TEST_KEY

FAST = {"countdown_s": 1, "attract_slideshow": False, "result_timeout_s": 120}
H = {"X-Edge-Agent": "1"}
VIDEO = {
    "name": "video",
    "platform": "easy",
    "endpoint": "videos.generations",
    "model": "video-dream",
    "prompt": "wave",
    "params": {"frames": 12},
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def booth(tmp_path: Path, sim: Any) -> Iterator[Any]:
    with kiosk_booths(tmp_path, sim.url, FAST) as make:
        yield make
    sim.configure(latency=0.2, workers=4, api_keys=(TEST_KEY,))


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    with kiosk_page(browser) as pg:
        yield pg


def capture(url: str, profile: str) -> str:
    r = httpx.post(f"{url}/api/capture", json={"profile": profile, "source": "cli"}, headers=H, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def state(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/api/state", timeout=5).json()


def take_photo(page: Any, card: int) -> str:
    page.click("#s-attract button.primary")
    wait_screen(page, "choose")
    page.click(f"#cards .card >> nth={card}")
    wait_screen(page, "waiting")
    return current_job(page)


def test_a_refused_api_key_puts_the_booth_out_of_order_until_it_works_again(booth: Any, page: Any, sim: Any) -> None:
    agent, url = booth()
    open_kiosk(page, url)
    assert page.is_visible("#s-attract .attract-text")
    sim.configure(api_keys=("sk-another-key",))  # the platform no longer takes the booth's key
    job_id = capture(url, "cartoon")
    wait_js(page, "document.body.dataset.out === 'out'", 30_000)  # no reload: the state event says so
    st = state(url)
    assert st["mode"] == "error" and "easy" in (st.get("detail") or "")
    assert page.is_hidden("#s-attract .attract-text")  # no "Start" to invite guests
    assert page.inner_text("#a-out-title") == "Sorry, this booth is out of order"
    assert "staff" in page.inner_text("#a-out-body")
    shoot(page, "out-of-order")
    page.click("#s-attract")  # a guest taps anyway: nothing starts
    page.keyboard.press("Space")
    page.wait_for_timeout(300)
    assert page.evaluate("document.body.dataset.screen") == "attract" and agent.store.counts().get("captured") is None
    page.click("#lang")
    assert page.inner_text("#a-out-title") == "抱歉，照相亭暂停服务"
    assert "工作人员" in page.inner_text("#a-out-body")
    shoot(page, "out-of-order-zh", {"1024x600": SIZES["1024x600"]})
    page.click("#lang")

    sim.configure(api_keys=(TEST_KEY,))  # the operator fixed the key: a job delivered on that platform ends it
    r = httpx.post(f"{url}/api/jobs/{job_id}/retry", json={}, headers=H, timeout=10)
    assert r.status_code in (200, 202), r.text
    wait_js(page, "document.body.dataset.out === ''", 30_000)
    assert page.is_visible("#s-attract .attract-text") and page.is_hidden("#a-out")
    page.click("#s-attract button.primary")
    wait_screen(page, "choose")


def test_the_preview_shows_the_whole_frame_unflipped_below_the_title(booth: Any, page: Any) -> None:
    agent, url = booth(display={"countdown_s": 10})
    open_kiosk(page, url)
    page.click("#s-attract button.primary")
    page.click("#cards .card >> nth=0")
    wait_screen(page, "capture")
    wait_js(page, "document.querySelector('#preview').naturalWidth > 0")
    for label, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(80)
        box = page.evaluate(
            """() => { const p = document.querySelector('#preview'); const r = p.getBoundingClientRect();
            const cs = getComputedStyle(p); return {top: r.top, bottom: r.bottom, width: r.width, height: r.height,
            fit: cs.objectFit, transform: cs.transform, nw: p.naturalWidth, nh: p.naturalHeight,
            title: document.querySelector('.top').getBoundingClientRect().bottom}; }"""
        )
        assert box["transform"] == "none", label  # the server mirrors it as configured: never a second flip
        assert box["fit"] == "contain", label  # the whole 4:3 frame, letterboxed
        assert box["top"] >= box["title"] - 1, label  # the title bar does not cover the top of the picture
        # the frame drawn inside the box: all of it visible at this size
        scale = min(box["width"] / box["nw"], box["height"] / box["nh"])
        assert box["nw"] * scale <= w + 1 and box["nh"] * scale <= h - box["title"] + 1, label
    shoot(page, "preview")
    page.click("#s-capture button")  # cancel: no photo


def test_waiting_words_plurals_the_line_and_no_time_while_offline(booth: Any, page: Any, sim: Any) -> None:
    agent, url = booth()
    open_kiosk(page, url)
    plural = page.evaluate(
        """async () => { const { Texts } = await import('/kiosk/api.js');
        const s = await (await fetch('/kiosk/settings.json')).json(); const t = new Texts(s); const out = {};
        for (const lang of ['en', 'zh-CN']) { t.lang = lang; out[lang] = [t.n('waiting.eta_s', 1, {s: 1}),
          t.n('waiting.eta_s', 5, {s: 5}), t.n('waiting.eta_min', 1, {m: 1}), t.n('waiting.eta_min', 3, {m: 3}),
          t.n('waiting.ahead', 1, {n: 1}), t.n('waiting.ahead', 2, {n: 2})]; }
        return out; }"""
    )
    assert plural["en"] == [
        "About 1 second left",
        "About 5 seconds left",
        "About 1 minute left",
        "About 3 minutes left",
        "1 ahead of you",
        "2 ahead of you",
    ]
    assert plural["zh-CN"] == [
        "大约还需 1 秒",
        "大约还需 5 秒",
        "大约还需 1 分钟",
        "大约还需 3 分钟",
        "前面还有 1 位",
        "前面还有 2 位",
    ]

    # one GPU on the platform, busy with someone's job: the guest reads their place in its line
    sim.configure(workers=1, latency=6.0)
    capture(url, "oil")
    take_photo(page, 1)
    wait_js(page, "document.querySelector('#w-ahead').textContent === '1 ahead of you'", 20_000)
    shoot(page, "waiting-ahead", {"1024x600": SIZES["1024x600"]})
    wait_screen(page, "result", 40_000)
    page.click("#s-result button.primary")
    sim.configure(workers=4, latency=0.2)

    sim.stop()  # offline: the photo waits for the network, no time is promised
    try:
        take_photo(page, 0)
        wait_js(page, "document.querySelector('#s-waiting').dataset.kind === 'offline'", 20_000)
        page.wait_for_timeout(1500)  # a few retries later: still no time
        assert page.inner_text("#w-eta") == "" and page.is_hidden("#w-eta")
    finally:
        sim.start()
    wait_screen(page, "result", 30_000)


def test_the_result_fits_at_1024x600_with_the_tray(booth: Any, page: Any, sim: Any) -> None:
    agent, url = booth(display={"result_timeout_s": 60})
    open_kiosk(page, url)
    sim.configure(latency=20.0)  # the first guest's picture takes long
    take_photo(page, 1)
    page.click("#s-waiting button.primary")  # next guest
    wait_screen(page, "choose")
    sim.configure(latency=0.2)
    page.click("#cards .card >> nth=0")
    wait_screen(page, "result", 30_000)
    wait_js(page, "document.querySelector('#r-media img') && document.querySelector('#r-media img').naturalWidth > 0")
    assert page.is_visible("#tray .chip")
    for label, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(80)
        hidden = page.evaluate(
            """() => { const tray = document.querySelector('#tray').getBoundingClientRect().top;
            return [...document.querySelectorAll('#s-result h2, #s-result button:not([hidden]), #r-back, #r-qr')]
              .filter(e => { const r = e.getBoundingClientRect();
                return r.top < 0 || r.bottom > tray + 1 || r.right > innerWidth + 1 || r.height === 0; })
              .map(e => e.id || e.textContent); }"""
        )
        assert hidden == [], (label, hidden)
        assert re.fullmatch(r"Back to the start in \d+ s", page.inner_text("#r-back"))
    shoot(page, "result-with-tray")


def test_an_earlier_guests_picture_leaves_the_screen(booth: Any, page: Any, sim: Any) -> None:
    agent, url = booth(display={"result_timeout_s": 6})
    open_kiosk(page, url)
    sim.configure(latency=2.0)
    first = take_photo(page, 0)
    page.click("#s-waiting button.primary")  # the next guest; the first waits aside
    wait_screen(page, "choose")
    page.click("#s-choose .actions button")  # back
    wait_screen(page, "attract")
    page.wait_for_selector("#tray .chip.ready", timeout=20_000)
    assert page.inner_text("#tray .tray-title") == "Ready to collect"  # not "In progress"
    shoot(page, "tray-ready", {"1024x600": SIZES["1024x600"]})
    # nobody came for it: gone after the result time, also from the browser's storage
    page.wait_for_selector("#tray", state="hidden", timeout=15_000)
    assert first not in page.evaluate("localStorage.getItem('edge-agent.kiosk.jobs') || ''")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_timeout(800)
    assert page.is_hidden("#tray")

    # a guest who collects it and presses Done: gone at once
    second = take_photo(page, 0)
    page.click("#s-waiting button.primary")
    wait_screen(page, "choose")
    page.click("#s-choose .actions button")
    page.wait_for_selector("#tray .chip.ready", timeout=20_000)
    page.click("#tray .chip.ready")
    wait_screen(page, "result")
    assert current_job(page) == second
    page.click("#s-result button.primary")  # Done
    wait_screen(page, "attract")
    page.wait_for_timeout(300)
    assert page.is_hidden("#tray")
    assert second not in page.evaluate("localStorage.getItem('edge-agent.kiosk.jobs') || ''")


def test_a_video_plays_and_one_that_cannot_shows_the_photo_and_the_code(booth: Any, page: Any, sim: Any) -> None:
    agent, url = booth(profiles=[VIDEO], display={"share": True})
    open_kiosk(page, url)
    page.click("#s-attract button.primary")  # one profile: straight to the countdown
    wait_screen(page, "result", 40_000)
    wait_js(
        page, "document.querySelector('#r-media video') && document.querySelector('#r-media video').readyState >= 2"
    )
    assert page.evaluate("document.querySelector('#r-media video').videoWidth") > 0  # the simulator's VP9 MP4 plays
    shoot(page, "result-video", {"1024x600": SIZES["1024x600"]})
    page.click("#s-result button.primary")

    # a file this screen cannot play (a broken download): the photo and words, never a blank panel
    job_id = capture(url, "video")
    job = agent.wait_for(job_id, timeout=40)
    Path(job.outputs[0].path).write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4000)
    # the screen that showed it is restarted (as after a browser restart on the booth): its job's result again
    page.evaluate(
        """(id) => { localStorage.setItem('edge-agent.kiosk.jobs', JSON.stringify([{id, at: Date.now(), seen: false}]));
        sessionStorage.setItem('edge-agent.kiosk.current', JSON.stringify({screen: 'result', job: id})); }""",
        job_id,
    )
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    wait_screen(page, "result")
    page.wait_for_selector("#r-media .video-fallback", timeout=15_000)
    assert "Scan the code" in page.inner_text("#r-media .video-fallback p")
    wait_js(page, "document.querySelector('#r-media .video-fallback img').naturalWidth > 0")  # the guest's photo
    assert page.is_visible("#r-qr")
    shoot(page, "video-fallback")


def test_no_404_for_an_icon_and_the_status_page_wording(booth: Any, page: Any) -> None:
    agent, url = booth()
    open_kiosk(page, url)
    page.wait_for_timeout(500)
    assert page.evaluate("document.querySelector('link[rel=icon]').href").endswith("/kiosk/favicon.svg")
    r = httpx.get(f"{url}/kiosk/favicon.svg", timeout=5)
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml" and b"<svg" in r.content
    status = page.context.new_page()
    status.on("response", lambda r: r.status == 404 and page.missing.append(r.url))  # type: ignore[attr-defined]
    status.goto(url + "/status")
    assert "1 event stream" in status.inner_text("body")  # the kiosk's own stream
    printer = status.locator("tr", has=status.locator("th", has_text="printer")).locator("td")
    assert printer.inner_text().startswith("off") and printer.get_attribute("class") is None  # a choice, not a fault
    status.wait_for_timeout(300)
    assert page.missing == [] and status.url.endswith("/status")  # type: ignore[attr-defined]
