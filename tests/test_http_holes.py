"""Smaller holes in the HTTP API: deep JSON, symlinks in a job's folder, ambiguous Content-Length, 1e999."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.support.daemon import DaemonProcess
from tests.support.http import PROOF, post, raw_request, status_of

JSON = {**PROOF, "Content-Type": "application/json"}


def test_deep_json_is_a_clean_400_without_a_traceback(config_file, tmp_path: Path) -> None:
    """30,000-deep JSON (and merely deep JSON that parses) gets a JSON 400 on a live connection; the daemon's
    stderr shows no traceback."""
    d = DaemonProcess(config_file(), tmp_path / "daemon.log")
    url = d.start()
    port = int(url.rsplit(":", 1)[1])
    try:
        bodies = [
            b"[" * 30000 + b"]" * 30000,
            b'{"params": {"prompt": ' + b"[" * 30000 + b"]" * 30000 + b"}}",
            b'{"params": {"prompt": ' + b'{"a": ' * 900 + b"1" + b"}" * 900 + b"}}",
            b'{"profile": ' + b"[" * 500 + b"]" * 500 + b"}",
        ]
        for body in bodies:
            reply = post(port, "/api/capture", body, headers=JSON)
            assert status_of(reply) == 400, reply[:300]
            assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "bad_request"
        with httpx.Client(base_url=url, headers=PROOF) as http:  # the daemon is fine afterwards
            assert http.post("/api/capture", json={}).status_code == 202
    finally:
        d.stop()
    log = d.log_text()
    assert "Traceback" not in log and "RecursionError" not in log, log[-3000:]


def test_numbers_too_large_to_carry_are_refused(api) -> None:
    agent, server = api
    for raw in (b"1e999", b"-1e999", b"NaN", b"Infinity", b"1" + b"0" * 400 + b".0"):
        reply = post(server.port, "/api/capture", b'{"params": {"prompt": ' + raw + b"}}", headers=JSON)
        assert status_of(reply) == 400, (raw[:20], reply[:300])
    msg = json.loads(
        post(server.port, "/api/capture", b'{"params": {"prompt": 1e999}}', headers=JSON).split(b"\r\n\r\n", 1)[1]
    )["error"]["message"]
    assert "too large" in msg
    assert agent.store.counts() == {}


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 2\r\nContent-Length: 2\r\n",
        b"Content-Length: 2\r\nContent-Length: 40\r\n",
        b"Content-Length: 2, 2\r\n",
        b"Content-Length: +2\r\n",
        b"Content-Length: 2_0\r\n",
        b"Content-Length: 0x2\r\n",
        b"Content-Length: abc\r\n",
        b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
    ],
    ids=["twice-same", "twice-different", "comma-list", "plus-sign", "underscore", "hex", "non-digit", "with-chunked"],
)
def test_ambiguous_content_length_is_a_400_and_closes(api, framing: bytes) -> None:
    """Whatever the framing headers say, one answer and the connection closes: a second request hidden in the body
    (request smuggling) is never run."""
    agent, server = api
    hidden = b"POST /api/capture HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Edge-Agent: 1\r\nContent-Type: application/json\r\n"
    hidden += b"Content-Length: 2\r\n\r\n{}"
    req = (
        b"POST /api/capture HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Edge-Agent: 1\r\nContent-Type: application/json\r\n"
        + framing
        + b"\r\n{}"
        + hidden
    )
    reply = raw_request(server.port, req)
    assert status_of(reply) in (400, 411), reply[:300]
    assert reply.count(b"HTTP/1.1 ") == 1, reply
    assert agent.store.counts() == {}


def test_a_get_with_a_body_is_refused_and_closes(api) -> None:
    agent, server = api
    hidden = b"POST /api/capture HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Edge-Agent: 1\r\nContent-Type: application/json\r\n"
    hidden += b"Content-Length: 2\r\n\r\n{}"
    req = b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % len(hidden) + hidden
    reply = raw_request(server.port, req)
    assert status_of(reply) == 400 and reply.count(b"HTTP/1.1 ") == 1, reply[:300]
    assert agent.store.counts() == {}


def test_symlinks_in_a_job_folder_are_never_served(api, tmp_path: Path) -> None:
    agent, server = api
    with httpx.Client(base_url=server.url, headers=PROOF) as http:
        jid = http.post("/api/capture", json={}).json()["job_id"]
        job = agent.wait_for(jid, timeout=20)
        folder = Path(job.result_dir)
        secret = tmp_path / "secret.txt"
        secret.write_text("the device's private data")
        (folder / "leak.txt").symlink_to(secret)  # out of the folder
        (folder / "result-7.png").symlink_to("/etc/passwd")
        (folder / "result-8.png").symlink_to(folder / "result-1.png")  # a link even to its own file
        (folder / "copy.jpg").symlink_to("capture.jpg")  # relative
        os.mkfifo(folder / "result-9.png")  # would block a naive open()
        (folder / "sub").mkdir()
        assert http.get(f"/results/{jid}/result-1.png").status_code == 200  # the real file is served
        for name in ("leak.txt", "result-7.png", "result-8.png", "copy.jpg", "result-9.png", "sub"):
            r = http.get(f"/results/{jid}/{name}", timeout=5)
            assert r.status_code == 404, (name, r.status_code)
            assert b"private" not in r.content and b"root:" not in r.content
            assert http.head(f"/results/{jid}/{name}", timeout=5).status_code == 404

        # the job's folder itself swapped for a link to somewhere else
        elsewhere = tmp_path / "elsewhere"
        shutil.move(str(folder), elsewhere)
        folder.symlink_to(elsewhere, target_is_directory=True)
        assert http.get(f"/results/{jid}/result-1.png").status_code == 404
