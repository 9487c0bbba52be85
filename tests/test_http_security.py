"""Abuse of the local HTTP API and of a hostile platform: bad input changes nothing, secrets never leak."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from agent.config import load_config
from agent.core import Agent
from agent.httpapi import MAX_CONNECTIONS
from agent.jobs.model import JobState
from tests.support.configs import TEST_KEY
from tests.support.http import PROOF, connect, raw_request, status_of
from tests.support.proc import wait_until


def test_source_label_never_skips_the_remote_params_check(api) -> None:
    agent, server = api
    r = httpx.post(
        f"{server.url}/api/capture",
        json={"source": "cli", "params": {"image": "file:///etc/passwd", "model": "x"}},
        headers=PROOF,
    )
    assert r.status_code == 400 and "may not be set remotely" in r.json()["error"]["message"]
    assert agent.store.counts() == {}


@pytest.mark.parametrize(
    "request_bytes,status",
    [
        (b"POST /api/capture HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n{}", b"400"),
        (
            b"POST /api/capture HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b'Content-Type: application/json\r\n\r\n13\r\n{"profile": "nope"}\r\n0\r\n\r\n',
            b"411",
        ),
        (
            b"POST /api/capture HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Edge-Agent: 1\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 2\r\n\r\n{}",
            b"415",
        ),
        (
            b"POST /api/capture HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Edge-Agent: 1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 26\r\n"
            b'\r\n{"params": {"prompt": NaN}}',
            b"400",
        ),
        (b"POST /api/capture HTTP/1.1\r\nHost: rebind.attacker.example\r\nContent-Length: 0\r\n\r\n", b"403"),
        (
            b"POST /api/capture HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://attacker.example\r\nContent-Length: 0\r\n\r\n",
            b"403",
        ),
        (b"GET /api/jobs HTTP/1.1\r\nHost: rebind.attacker.example:8080\r\n\r\n", b"403"),
    ],
    ids=["negative-length", "chunked", "not-json", "nan", "foreign-host", "foreign-origin", "rebinding-read"],
)
def test_bad_requests_are_refused_and_change_nothing(api, request_bytes: bytes, status: bytes) -> None:
    agent, server = api
    reply = raw_request(server.port, request_bytes)
    assert reply.split(b" ", 2)[1] == status, reply[:200]
    assert agent.store.counts() == {}


def test_known_hosts_and_origins_are_accepted(api) -> None:
    agent, server = api
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}"):
        r = httpx.post(
            f"{server.url}/api/capture", json={}, headers={**PROOF, "Host": host, "Origin": f"http://{host}"}
        )
        assert r.status_code == 202
    assert sum(agent.store.counts().values()) == 2


def test_connection_cap_answers_503_and_recovers(api) -> None:
    """Other clients (127.0.0.10 and up stand for phones) fill every slot they may: a new one gets 503 at once,
    the device's own client (127.0.0.1: the kiosk, the CLI) still gets an answer from the slots kept for it."""
    agent, server = api
    idle = [connect(server.port, f"127.0.0.{10 + i // 4}") for i in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)
        reply = raw_request(server.port, b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", source="127.0.0.99")
        assert reply.startswith(b"HTTP/1.1 503")
        assert httpx.get(f"{server.url}/api/state", timeout=5).status_code == 200
    finally:
        for s in idle:
            s.close()
    wait_until(
        lambda: (
            status_of(
                raw_request(server.port, b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", source="127.0.0.99")
            )
            == 200
        ),
        what="slots freed",
    )


def test_results_are_served_with_safe_headers(api) -> None:
    agent, server = api
    jid = httpx.post(f"{server.url}/api/capture", json={}, headers=PROOF).json()["job_id"]
    job = agent.wait_for(jid, timeout=20)
    r = httpx.get(job.outputs[0].url)
    assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"].startswith("default-src 'none'")


class _Hostile(BaseHTTPRequestHandler):
    """An 'EasyAI' that echoes the bearer key back in a 200 failure and serves an SVG with script as output."""

    def log_message(self, *a) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        auth = self.headers.get("Authorization", "")
        if "echo" in self.path or self.server.mode == "echo":
            self._send(
                200, json.dumps({"status": "failed", "message": f"invalid key {auth}"}).encode(), "application/json"
            )
        elif self.server.mode == "ssrf":  # a result "hosted" on another local service of the device
            url = f"http://localhost:{self.server.local_port}/guest-photo.png"
            self._send(
                200,
                json.dumps({"status": "success", "data": [{"url": url, "type": "image"}]}).encode(),
                "application/json",
            )
        else:
            url = f"http://127.0.0.1:{self.server.server_address[1]}/out.svg"
            self._send(
                200,
                json.dumps({"status": "success", "data": [{"url": url, "type": "image"}]}).encode(),
                "application/json",
            )

    def do_GET(self) -> None:
        self._send(200, b'<svg xmlns="http://www.w3.org/2000/svg" onload="fetch(\'/api/capture\')"/>', "image/svg+xml")


@pytest.mark.parametrize("mode", ["echo", "svg", "ssrf"])
def test_hostile_platform(config_file, mode: str, tmp_path: Path) -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    srv.mode = mode
    local = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)  # stands for another local service
    local.mode = "svg"
    srv.local_port = local.server_port
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        agent = Agent(load_config(config_file(platforms={"easy": {"base_url": f"http://127.0.0.1:{srv.server_port}"}})))
        agent.start()
        try:
            from agent.commands import Command

            jid = agent.request(Command("capture", "http")).result(10)["job_id"]
            job = agent.wait_for(jid, timeout=20)
            assert job.state == JobState.FAILED
            if mode == "echo":
                assert "invalid key Bearer ***" in job.error
            elif mode == "ssrf":
                assert "output link points at a local address (localhost -> " in job.error
            else:
                assert "output is SVG/XML, not a raster image" in job.error
                assert not list(Path(job.result_dir).glob("result-*"))
            everything = json.dumps(agent.state()) + Path(job.result_dir, "job.json").read_text()
            assert TEST_KEY not in everything
        finally:
            agent.stop()
    finally:
        srv.shutdown()
        local.server_close()


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_a_request_through_a_reverse_proxy_on_the_booth_is_not_the_booth(api, header: str) -> None:
    """README: phones reach share links through a proxy on the device; that must not make them loopback callers."""
    _agent, http = api
    value = "for=192.0.2.7" if header == "Forwarded" else "192.0.2.7"
    for path in ("/api/jobs", "/api/state", "/status"):
        r = httpx.get(f"{http.url}{path}", headers={header: value}, timeout=5)
        assert r.status_code == 401, (path, r.status_code)
    r = httpx.post(f"{http.url}/api/capture", json={}, headers={header: value, "X-Edge-Agent": "1"}, timeout=5)
    assert r.status_code == 401
    assert httpx.get(f"{http.url}/api/jobs", timeout=5).status_code == 200  # the booth itself still is
