"""No cross-site control: a web page on another origin can neither start nor cancel a job on the booth.

A state-changing request (POST capture / cancel / retry / print) needs the header `X-Edge-Agent: 1` (a custom
header forces a CORS preflight, which the agent never grants) and a JSON body sent as application/json;
`Origin`, when present, must be exactly the agent's own origin and `Sec-Fetch-Site` must be same-origin or none.
"""

from __future__ import annotations

import json
import random
import time

import httpx
import pytest

from agent.config import load_config
from agent.core import Agent
from agent.httpapi import HttpApi
from tests.support.http import PROOF, headers_of, post, raw_request, status_of

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(config_file):
    agent = Agent(load_config(config_file(http={"listen": "127.0.0.1:0", "public_url": "http://booth.example:8080"})))
    agent.start()
    server = HttpApi(agent)
    server.start()
    yield agent, server
    server.stop()
    agent.stop()


REFUSED = [
    ("origin-null", {**PROOF, **JSON, "Origin": "null"}, b"{}", 403),
    ("origin-file", {**PROOF, **JSON, "Origin": "file://"}, b"{}", 403),
    ("origin-ip-literal", {**PROOF, **JSON, "Origin": "http://203.0.113.5"}, b"{}", 403),
    ("origin-ip-literal-port", {**PROOF, **JSON, "Origin": "http://192.168.1.20:8080"}, b"{}", 403),
    ("origin-loopback-other-port", {**PROOF, **JSON, "Origin": "http://127.0.0.1:1"}, b"{}", 403),
    ("origin-https-same-host", {**PROOF, **JSON, "Origin": "https://127.0.0.1:{port}"}, b"{}", 403),
    ("origin-with-path", {**PROOF, **JSON, "Origin": "http://127.0.0.1:{port}/x"}, b"{}", 403),
    ("no-proof-json", {**JSON}, b"{}", 403),
    ("no-proof-form", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=b", 403),
    ("proof-wrong-value", {"X-Edge-Agent": "yes", **JSON}, b"{}", 403),
    ("text-plain", {**PROOF, "Content-Type": "text/plain"}, b"{}", 415),
    ("bodiless-no-type", {**PROOF}, b"", 415),
    ("no-length-no-type", {**PROOF}, None, 415),
    ("bodiless-no-proof", {**JSON}, b"", 403),
    ("fetch-site-cross-site", {**PROOF, **JSON, "Sec-Fetch-Site": "cross-site"}, b"{}", 403),
    ("fetch-site-same-site", {**PROOF, **JSON, "Sec-Fetch-Site": "same-site"}, b"{}", 403),
]


@pytest.mark.parametrize("headers,body,status", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_cross_site_captures_are_refused(api, headers: dict[str, str], body: bytes | None, status: int) -> None:
    agent, server = api
    headers = {k: v.format(port=server.port) for k, v in headers.items()}
    reply = post(server.port, "/api/capture", body, headers=headers)
    assert status_of(reply) == status, reply[:300]
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]["code"] in ("forbidden", "bad_request")
    assert agent.store.counts() == {}


def test_same_origin_requests_are_accepted(api) -> None:
    agent, server = api
    own = f"http://127.0.0.1:{server.port}"
    cases = [
        {**PROOF, **JSON, "Origin": own, "Sec-Fetch-Site": "same-origin"},  # the kiosk page
        {**PROOF, **JSON, "Origin": f"http://localhost:{server.port}", "Host": f"localhost:{server.port}"},
        {**PROOF, **JSON, "Origin": "http://booth.example:8080"},  # http.public_url's origin (a reverse proxy)
        {**PROOF, **JSON, "Sec-Fetch-Site": "none"},
        {**PROOF, **JSON},  # curl, the CLI
    ]
    for h in cases:
        r = httpx.post(f"{server.url}/api/capture", json={}, headers=h)
        assert r.status_code == 202, (h, r.text)
    # an empty body is fine when it carries the proof and says it is JSON
    assert status_of(post(server.port, "/api/capture", b"", headers={**PROOF, **JSON})) == 202
    assert sum(agent.store.counts().values()) == len(cases) + 1


def test_job_actions_need_the_proof_too(api) -> None:
    agent, server = api
    with httpx.Client(base_url=server.url, headers=PROOF) as http:
        jid = http.post("/api/capture", json={"profile": "oil", "params": {"prompt": "SLOW"}}).json()["job_id"]
    for action in ("cancel", "retry", "print"):
        for headers, body in (
            (JSON, b"{}"),  # no proof
            ({**PROOF, "Content-Type": "text/plain"}, b"{}"),
            ({**PROOF}, b""),
            ({**PROOF, **JSON, "Origin": "null"}, b"{}"),
        ):
            reply = post(server.port, f"/api/jobs/{jid}/{action}", body, headers=headers)
            assert status_of(reply) in (403, 415), (action, headers, reply[:200])
    assert agent.store.get(jid).state.value not in ("cancelled",)
    r = httpx.post(f"{server.url}/api/jobs/{jid}/cancel", json={}, headers=PROOF)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"


def test_preflight_is_never_granted(api) -> None:
    agent, server = api
    preflight = (
        f"OPTIONS /api/capture HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nOrigin: http://attacker.example\r\n"
        "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, x-edge-agent\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    reply = raw_request(server.port, preflight)
    assert not 200 <= status_of(reply) < 300, reply[:300]
    assert not [h for h in headers_of(reply) if h.startswith("access-control-")], reply[:400]
    # and no other answer carries CORS grants either (GETs stay readable by same-origin pages only)
    for r in (
        httpx.get(f"{server.url}/api/state", headers={"Origin": f"http://127.0.0.1:{server.port}"}),
        httpx.get(f"{server.url}/api/state", headers={"Origin": "http://attacker.example"}),
        httpx.post(f"{server.url}/api/capture", json={}, headers={**PROOF, "Origin": "http://attacker.example"}),
    ):
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]
    assert httpx.get(f"{server.url}/api/state").status_code == 200


def test_job_routes_take_full_ids_only(api) -> None:
    agent, server = api
    with httpx.Client(base_url=server.url, headers=PROOF) as http:
        jid = http.post("/api/capture", json={"profile": "oil", "params": {"prompt": "SLOW"}}).json()["job_id"]
        for n in (4, 8, 13, 35):
            assert http.get(f"/api/jobs/{jid[:n]}").status_code == 404
            for action in ("cancel", "retry", "print"):
                r = http.post(f"/api/jobs/{jid[:n]}/{action}", json={})
                assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (n, action, r.text)
        assert http.get(f"/api/jobs/{jid.upper()}").json()["id"] == jid  # the full id, in any case
        # a brute force over 4-hex-digit prefixes finds nothing (the real job's own prefix is among them)
        prefixes = {jid[:4]} | {f"{random.randrange(16**4):04x}" for _ in range(500)}
        t0 = time.monotonic()
        hits = [p for p in prefixes if http.post(f"/api/jobs/{p}/cancel", json={}).status_code != 404]
        rate = len(prefixes) / (time.monotonic() - t0)
        print(f"\n4-hex brute force: {len(prefixes)} prefixes at {rate:.0f}/s, {len(hits)} hits")
        assert hits == []
        assert http.get(f"/api/jobs/{jid}").json()["state"] != "cancelled"
