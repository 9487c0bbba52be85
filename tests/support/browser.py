"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, and where screenshots go.

One browser per test module (starting Chromium costs about a second); each test opens its own context. Under
CI=true a missing Chromium is a failure, elsewhere a skip. Screenshots land in $EDGE_AGENT_ARTIFACTS (default
tests/artifacts/, git-ignored), one file per screen and size.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.configs import REPO

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# the three screens the kiosk must read well on: a 7" panel, a TV, a portrait totem
SIZES = {"1024x600": (1024, 600), "1920x1080": (1920, 1080), "1080x1920": (1080, 1920)}
PHONE = {"width": 390, "height": 844}


def artifacts() -> Path:
    d = Path(os.environ.get("EDGE_AGENT_ARTIFACTS") or REPO / "tests" / "artifacts") / "kiosk"
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextmanager
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (scripts/test.sh installs it)")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def shoot(page: Any, name: str, sizes: dict[str, tuple[int, int]] = SIZES) -> list[Path]:
    """A screenshot of what `page` shows now at each size (the viewport is restored afterwards)."""
    before = page.viewport_size
    paths = []
    for label, (w, h) in sizes.items():
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(120)  # one layout and paint at the new size
        path = artifacts() / f"{name}-{label}.png"
        page.screenshot(path=str(path))
        paths.append(path)
    if before:
        page.set_viewport_size(before)
    return paths


def small_targets(page: Any) -> list[str]:
    """Visible buttons smaller than 48x48 CSS pixels (what a finger cannot hit reliably)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('button')].filter(b => {
            const r = b.getBoundingClientRect();
            return r.width > 0 && r.height > 0 && getComputedStyle(b).visibility !== 'hidden'
                && (r.width < 48 || r.height < 48);
        }).map(b => (b.textContent || b.id).trim() + ' ' + Math.round(b.getBoundingClientRect().width) + 'x'
                  + Math.round(b.getBoundingClientRect().height))"""
    )


# ------------------------------------------------------------------------------------------ the kiosk page


def open_kiosk(page: Any, url: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='1']")


def screen(page: Any) -> str:
    return page.evaluate("document.body.dataset.screen")


def wait_js(page: Any, expr: str, timeout: float = 20_000) -> None:
    """Wait until the JS expression is true. Polled with page.evaluate (the DevTools protocol): Playwright's
    wait_for_function evaluates strings in the page, which the page's strict CSP (no unsafe-eval) refuses."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expr):
        if time.monotonic() > deadline:
            page.screenshot(path=str(artifacts() / "timeout.png"))
            shown = page.evaluate("document.querySelector('.screen.active').innerHTML.slice(0, 1500)")
            raise AssertionError(f"timed out waiting for {expr} (screen {screen(page)}): {shown}")
        page.wait_for_timeout(100)


def wait_screen(page: Any, name: str, timeout: float = 20_000) -> None:
    wait_js(page, f"document.body.dataset.screen === '{name}'", timeout)


def current_job(page: Any) -> str:
    return page.evaluate("JSON.parse(sessionStorage.getItem('edge-agent.kiosk.current')).job")


@contextmanager
def kiosk_booths(tmp_path: Path, sim_url: str, display: dict[str, Any]) -> Iterator[Any]:
    """make(**config overrides) -> (agent, base url): an Agent with its HTTP API on the simulator, with the
    given [display] settings under the test's own; all stopped at the end."""
    from tests.support.configs import base_config, merge, write_config
    from tests.support.http import api_booths

    with api_booths() as start:

        def make(**over: Any) -> tuple[Any, str]:
            over = {**over, "display": {**display, **over.get("display", {})}}
            agent, api = start(write_config(tmp_path / "config.toml", merge(base_config(tmp_path, sim_url), over)))
            return agent, api.url

        yield make


@contextmanager
def kiosk_page(browser: Any, *, check_errors: bool = True) -> Iterator[Any]:
    """A 1024x600 page in its own context; a script error on it fails the test (a broken screen, even if the
    test got through). `page.missing` lists the URLs that answered 404."""
    ctx = browser.new_context(viewport={"width": 1024, "height": 600})
    pg = ctx.new_page()
    errors: list[str] = []
    missing: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("response", lambda r: r.status == 404 and missing.append(r.url))
    pg.missing = missing
    try:
        yield pg
    finally:
        ctx.close()
    if check_errors:
        assert not errors, errors
