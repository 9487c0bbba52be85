"""The platform clients against a deliberately hostile server over real HTTP on loopback (tests/support/hostile.py):
downloads that drip, one slow host, output links and redirects into this device, gzip bombs, web pages served as
media, JSON nested 200,000 deep. Echoed keys and unbounded texts: test_platform_leaks.py.

Lines starting with FIGURE are the measured numbers (``pytest -s`` shows them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.platforms.base import (
    Download,
    PermanentError,
    PlatformError,
    TransientError,
)
from tests.support.hostile import (
    PNG_HEAD,
    HostileServer,
    deep_json,
    drip,
    gzip_bomb,
    gzip_of,
    gzipped,
    image,
    json_reply,
    redirect,
    reply,
    stall,
)

REPO = Path(__file__).resolve().parents[1]
PNG = PNG_HEAD + bytes(64)
SVG = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"fetch('/api/capture',{method:'POST'})\"/>"
HTML = b"<!DOCTYPE html><html><body><script>fetch('/api/capture')</script></body></html>"


def figure(text: str) -> None:
    print(f"FIGURE {text}")


# --------------------------------------------------------------------------------------------- 1. deadlines


def test_a_dripping_download_is_cut_off_at_the_download_deadline(srv, clients, tmp_path):
    url = srv.route("/slow.png", drip(PNG + bytes(100), every_s=0.5, first=len(PNG)))
    c = clients(srv.url, download_deadline_s=2.0, read_timeout_s=60)
    t0 = time.monotonic()
    with pytest.raises(TransientError) as e:
        c.download(image(url), tmp_path / "r")
    took = time.monotonic() - t0
    figure(f"drip 1 byte/0.5 s, download_deadline_s=2: cut off after {took:.2f} s")
    assert e.value.kind == "timeout" and "took longer than 2 s" in str(e.value)
    assert 1.9 <= took < 2.5
    assert list(tmp_path.iterdir()) == []  # the partial file is gone


def test_the_callers_deadline_wins_when_it_is_first_even_before_the_headers(srv, clients, tmp_path):
    url = srv.route("/stall.png", stall(30))  # never even sends a status line
    c = clients(srv.url, read_timeout_s=60)  # the default download_deadline_s (120) is not the first
    t0 = time.monotonic()
    with pytest.raises(TransientError) as e:
        c.download(image(url), tmp_path / "r", deadline=time.monotonic() + 1.0)
    took = time.monotonic() - t0
    figure(f"stalled headers, job deadline 1 s away: cut off after {took:.2f} s")
    assert e.value.kind == "timeout" and "took longer than" in str(e.value)
    assert 0.9 <= took < 1.5


def test_a_dripping_api_reply_cannot_hold_a_job_either(srv, clients):
    srv.route(
        "/v1/ai/result/t1", drip(b'{"status": "running"}' + b" " * 100, every_s=0.5, content_type="application/json")
    )
    c = clients(srv.url, connect_timeout_s=0.5, read_timeout_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(TransientError) as e:
        c.poll("t1", "ai.generations")
    took = time.monotonic() - t0
    figure(f"API reply dripping 1 byte/0.5 s, budget connect 0.5 s + 2 x read 1 s: cut off after {took:.2f} s")
    assert e.value.kind == "timeout" and "took longer than 2.5 s" in str(e.value)
    assert 2.4 <= took < 3.0  # not the 60 s the drip would take


def test_one_slow_host_never_holds_more_downloads_than_the_bound(srv, clients, tmp_path):
    url = srv.route("/slow.png", drip(PNG + bytes(3), every_s=0.5, first=len(PNG)))
    c = clients(srv.url, max_downloads_per_host=2)
    other = clients(srv.url, max_downloads_per_host=2)  # another platform on the same host shares the bound
    start = threading.Barrier(6)
    results: list[tuple[object, float]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        client = c if i % 2 else other
        start.wait()
        t0 = time.monotonic()
        try:
            out: object = client.download(image(url), tmp_path / f"r{i}")
        except PlatformError as e:
            out = e
        with lock:
            results.append((out, time.monotonic() - t0))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    busy = [(e, took) for e, took in results if isinstance(e, TransientError) and e.kind == "busy"]
    done = [d for d, _ in results if isinstance(d, Download)]
    figure(
        f"6 concurrent downloads from one host dripping for 1.5 s, bound 2: at most {srv.max_active['/slow.png']} ran, "
        f"{len(busy)} answered busy within {max(t for _, t in busy):.3f} s"
    )
    assert len(done) == 2 and len(busy) == 4, results
    assert srv.max_active["/slow.png"] == 2
    assert all(took < 0.3 and e.retry_after and e.retry_after > 0 for e, took in busy)
    assert c.download(image(url), tmp_path / "again").size == len(PNG) + 3  # a freed slot is a slot again


# --------------------------------------------------------------------------------------------- 2. SSRF


@pytest.mark.parametrize("how", ["output-link", "redirect"])
@pytest.mark.parametrize("spelling", ["127.0.0.1", "[::ffff:127.0.0.1]"])
def test_links_and_redirects_into_another_local_service_are_refused(srv, clients, tmp_path, how, spelling):
    with HostileServer() as local:  # another service of this device (the agent's own API, a router page, ...)
        local.route("/guest.png", reply(PNG, content_type="image/png"))
        victim = f"http://{spelling}:{local.port}/guest.png"
        url = srv.route("/out.png", redirect(victim)) if how == "redirect" else victim
        c = clients(srv.url)
        with pytest.raises(PermanentError) as e:
            c.download(image(url), tmp_path / "r")
        assert e.value.kind == "output" and "loopback" in str(e.value) and "refused" in str(e.value)
        assert local.hits == {} and list(tmp_path.iterdir()) == []


def test_the_platforms_own_host_stays_reachable_in_any_spelling(srv, clients, tmp_path):
    """The simulator (or a LAN platform) on a local address serves its own outputs: its own address and port pass,
    however they are written."""
    srv.route("/real.png", reply(PNG, content_type="image/png"))
    url = srv.route("/out.png", redirect(f"http://[::ffff:127.0.0.1]:{srv.port}/real.png"))
    assert clients(srv.url).download(image(url), tmp_path / "r").type == "image"


# --------------------------------------------------------------------------------------------- 4. memory

_MEASURE = """
import json, re, sys
from pathlib import Path
from pydantic import SecretStr
from agent.config import EasyAIPlatformConfig
from agent.platforms import make_client
from agent.platforms.base import RemoteOutput


def status_kb(field):
    return int(re.search(field + r":\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))


base, what, target, dest = sys.argv[1:5]
c = make_client("easy", EasyAIPlatformConfig(kind="easyai", base_url=base, max_download_mb=16), SecretStr("k" * 32))
c.download(RemoteOutput(type="image", url=base + "/small.png"), Path(dest) / "warm")  # imports, pool: baseline
c.poll("warm", "ai.generations")
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from the RSS now
before = status_kb("VmRSS")
try:
    if what == "download":
        c.download(RemoteOutput(type="image", url=base + target), Path(dest) / "r")
    else:
        c.poll(target, "ai.generations")
    outcome = "no error"
except Exception as e:
    outcome = f"{type(e).__name__}({getattr(e, 'kind', '')}): {e}"
print(json.dumps({"grew_mb": (status_kb("VmHWM") - before) / 1024, "outcome": outcome}))
"""


def _peak_growth(srv: HostileServer, what: str, target: str, dest: Path) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, srv.url, what, target, str(dest)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return got["grew_mb"], got["outcome"]


@pytest.mark.parametrize("what", ["download", "api-reply", "api-reply-gzip-twice"])
def test_a_gzip_bomb_never_expands_in_memory(srv, tmp_path, what):
    srv.route("/small.png", reply(PNG, content_type="image/png"))
    srv.route("/v1/ai/result/warm", json_reply({"status": "running"}))
    if what == "download":
        bomb = gzip_bomb(2_000_000_000, prefix=PNG)  # a PNG header, then 2 GB of zeros: 2 MB on the wire
        srv.route("/bomb.png", gzipped(bomb, content_type="image/png"))
        grew, outcome = _peak_growth(srv, "download", "/bomb.png", tmp_path)
        assert "PermanentError(output): output larger than 16 MB" in outcome
    elif what == "api-reply":
        bomb = gzip_bomb(2_000_000_000, prefix=b'{"status": "running", "pad": "')
        srv.route("/v1/ai/result/bomb", gzipped(bomb))
        grew, outcome = _peak_growth(srv, "api", "bomb", tmp_path)
        assert "reply larger than 8 MB" in outcome
    else:  # each layer expands ~1000 times: a few KB on the wire, 256 MB after the second layer
        bomb = gzip_of(gzip_bomb(256_000_000, prefix=b'{"status": "running", "pad": "'))
        srv.route("/v1/ai/result/bomb", gzipped(bomb, encoding="gzip, gzip"))
        grew, outcome = _peak_growth(srv, "api", "bomb", tmp_path)
        assert "PermanentError(protocol)" in outcome
    figure(f"{len(bomb) / 1e6:.3f} MB gzip bomb as {what}: peak RSS grew {grew:.1f} MB ({outcome})")
    assert grew < 24  # the 8 MB reply cap, held once, plus the interpreter's own churn
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("warm")] == []


# --------------------------------------------------------------------------------------------- 5. magic bytes


@pytest.mark.parametrize(
    "body, declared",
    [
        (SVG, "image/png"),
        (SVG, "video/mp4"),
        (SVG, None),
        (HTML, "image/png"),
        (HTML, "video/mp4"),
        (HTML, None),
        (b"<!-- " + b"x" * 300 + b" -->" + SVG, "image/png"),  # the markup starts past the first bytes
        (b"<script>fetch('/api/capture')</script>", "image/png"),
        (b"\xef\xbb\xbf \n<div onclick=x>hi</div>", "video/mp4"),
        (b"just some words, no media", "audio/mpeg"),
    ],
    ids=[
        "svg-as-png",
        "svg-as-mp4",
        "svg-untyped",
        "html-as-png",
        "html-as-mp4",
        "html-untyped",
        "svg-after-comment",
        "script-as-png",
        "bom-div-as-mp4",
        "text-as-mp3",
    ],
)
def test_markup_or_text_served_as_media_is_refused(srv, clients, tmp_path, body, declared):
    url = srv.route("/out", reply(body, content_type=declared))
    with pytest.raises(PermanentError) as e:
        clients(srv.url).download(image(url), tmp_path / "r")
    assert e.value.kind == "output"
    assert list(tmp_path.iterdir()) == []


def test_the_bytes_decide_over_the_declared_type(srv, clients, tmp_path):
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(64)
    c = clients(srv.url)
    png_as_mp4 = c.download(image(srv.route("/a", reply(PNG, content_type="video/mp4"))), tmp_path / "a")
    mp4_untyped = c.download(image(srv.route("/b", reply(mp4, content_type=None))), tmp_path / "b")
    assert (png_as_mp4.content_type, png_as_mp4.type, png_as_mp4.path.suffix) == ("image/png", "image", ".png")
    assert (mp4_untyped.content_type, mp4_untyped.type, mp4_untyped.path.suffix) == ("video/mp4", "video", ".mp4")


def test_max_bytes_is_what_the_job_may_still_store(srv, clients, tmp_path):
    url = srv.route("/big.png", reply(PNG + bytes(5000), content_type="image/png"))
    with pytest.raises(PermanentError) as e:
        clients(srv.url).download(image(url), tmp_path / "r", max_bytes=1000)
    assert e.value.kind == "output" and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------- 6. deep JSON


def test_a_200k_deep_reply_is_a_clean_protocol_error(srv, clients):
    srv.route("/v1/ai/result/t1", reply(deep_json(200_000)))
    with pytest.raises(TransientError) as e:
        clients(srv.url).poll("t1", "ai.generations")
    assert e.value.kind == "protocol" and "not JSON" in str(e.value)


def test_deep_but_parseable_error_bodies_do_not_recurse_in_the_reader(srv, clients):
    srv.route("/v1/ai/result/t1", reply(deep_json(900, open_='{"data":', close="}"), status=400))
    with pytest.raises(PermanentError) as e:
        clients(srv.url).poll("t1", "ai.generations")
    assert e.value.status == 400 and e.value.kind == "http"
