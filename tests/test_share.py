"""Share links and the technician page over real HTTP: a guest's phone (another address on the booth's network,
here 127.0.0.10) opens /share/<token> and sees that job only; the page says "still working" and then shows the
result (headless Chromium at a phone's size); links expire. (That `/status` and `/` need the API token off
loopback is the API's own guard, the same call as every /api route; loopback-only tests cannot show a 401.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.httpapi import HttpApi
from tests.support.browser import PHONE, chromium, shoot
from tests.support.configs import base_config, merge, write_config
from tests.support.http import PROOF, api_booths, raw_request, status_of

PHONE_ADDR = "127.0.0.10"  # stands for a phone on the booth's network


@pytest.fixture
def booth(tmp_path: Path, sim: Any) -> Iterator[Any]:
    with api_booths() as start:
        yield lambda **display: start(
            write_config(tmp_path / "config.toml", merge(base_config(tmp_path, sim.url), {"display": display}))
        )
    sim.configure(latency=0.2)


def capture(api: HttpApi, profile: str = "oil") -> dict[str, Any]:
    r = httpx.post(api.url + "/api/capture", json={"profile": profile, "source": "kiosk"}, headers=PROOF)
    assert r.status_code == 202, r.text
    return httpx.get(f"{api.url}/api/jobs/{r.json()['job_id']}").json()


def get_from(api: HttpApi, path: str, source: str = PHONE_ADDR) -> bytes:
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{api.port}\r\nConnection: close\r\n\r\n".encode()
    return raw_request(api.port, req, source=source)


def test_share_url_is_in_the_job_from_capture_on(booth: Any) -> None:
    agent, api = booth()
    job = capture(api)
    token = job["share_token"]
    assert len(token) >= 22
    assert job["share_url"] == f"{api.url}/share/{token}"
    qr = httpx.get(f"{api.url}/share/{token}/qr.svg")
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/svg+xml" and b"<svg" in qr.content
    png = httpx.get(f"{api.url}/share/{token}/qr.png")
    assert png.content.startswith(b"\x89PNG")


def test_only_that_job_is_reachable_by_its_token(booth: Any) -> None:
    agent, api = booth()
    a, b = capture(api, "cartoon"), capture(api, "cartoon")
    for j in (a, b):
        agent.wait_for(j["id"], timeout=20)
    a, b = (httpx.get(f"{api.url}/api/jobs/{j['id']}").json() for j in (a, b))
    ta = a["share_token"]
    view = httpx.get(f"{api.url}/share/{ta}/job.json").json()
    assert view["state"] == "done"
    assert set(view) >= {"stage", "progress", "outputs", "expires_at"}
    assert "id" not in view and "error" not in view and "capture_path" not in view  # no internals
    own = view["outputs"][0]["url"]
    assert status_of(get_from(api, own)) == 200  # the phone needs no API token for its own picture
    other = b["outputs"][0]["url"].rsplit("/", 1)[1]
    assert other == own.rsplit("/", 1)[1]  # same file name in both jobs...
    assert get_from(api, own) != get_from(api, f"/share/{b['share_token']}/{other}")  # ...each token its own job's
    for path in (f"/share/{ta}/capture.jpg", f"/share/{ta}/job.json.bak", f"/share/{ta}/..%2fjob.json"):
        assert status_of(get_from(api, path)) == 404, path
    assert status_of(get_from(api, "/share/" + "A" * 22)) == 404
    assert status_of(get_from(api, "/share/" + "A" * 22 + "/job.json")) == 404


def test_share_link_expires(booth: Any) -> None:
    agent, api = booth(share_expiry_h=0.0003)  # about a second
    job = capture(api, "cartoon")
    token = job["share_token"]
    assert httpx.get(f"{api.url}/share/{token}/job.json").status_code == 200
    time.sleep(1.3)
    assert httpx.get(f"{api.url}/share/{token}/job.json").status_code == 410
    assert httpx.get(f"{api.url}/share/{token}").status_code == 410


def test_share_off_means_no_links(booth: Any) -> None:
    agent, api = booth(share=False)
    job = capture(api, "cartoon")
    assert job["share_url"] is None
    assert httpx.get(f"{api.url}/share/{job['share_token']}/job.json").status_code == 404


def test_share_page_on_a_phone_before_and_after_the_result(booth: Any, sim: Any) -> None:
    sim.configure(latency=3.0)
    agent, api = booth()
    job = capture(api, "oil")
    with chromium() as browser:
        ctx = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(job["share_url"])
        page.wait_for_selector("body[data-ready='1']")
        assert "Still working" in page.inner_text("#status")
        shoot(page, "share-working", {"phone": (PHONE["width"], PHONE["height"])})
        page.wait_for_selector("#media img", timeout=20_000)
        deadline = time.monotonic() + 10
        while not page.evaluate("document.querySelector('#media img').naturalWidth > 0"):
            assert time.monotonic() < deadline
            page.wait_for_timeout(100)
        assert page.inner_text("#status") == "Here it is!"
        shoot(page, "share-result", {"phone": (PHONE["width"], PHONE["height"])})
        page.click("#lang")
        assert page.inner_text("#status") == "完成啦！"
        page.goto(job["share_url"][: -len(job["share_token"])] + "B" * 22)
        page.wait_for_selector("body[data-ready='1']")
        assert "expired" in page.inner_text("#status")
        ctx.close()
    assert not errors, errors


def test_status_page(booth: Any) -> None:
    agent, api = booth()
    capture(api, "cartoon")
    r = httpx.get(api.url + "/status")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    for part in ("camera", "Platforms", "Queue", "Today", "Last errors", "MQTT", "disk (state)"):
        assert part in r.text, part
    # a foreign Host (DNS rebinding) is refused on every kiosk route, public or not
    for path in ("/status", "/", "/kiosk/kiosk.js", "/kiosk/settings.json"):
        req = f"GET {path} HTTP/1.1\r\nHost: evil.example:{api.port}\r\nConnection: close\r\n\r\n".encode()
        assert status_of(raw_request(api.port, req)) == 403, path
