"""The MQTT bridge against a real Mosquitto, a real Agent and the built-in simulator (no mocks)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.commands import ACTIONS
from agent.config import parse_config
from agent.core import Agent
from agent.mqtt import (
    MqttBridge,
    Rejected,
    Reply,
    RequestCache,
    Topics,
    check_age,
    ha_discovery,
    parse_command,
)
from tests.support.mosquitto import Mosquitto, TcpProxy, make_tls_files
from tests.support.mqtt import (
    API_KEY,
    KEY_ENV,
    Booth,
    answers_to,
    booth_config,
    reply_props,
    response_to,
    settle,
)
from tests.support.proc import wait_until

pytest_plugins = ("tests.support.mqtt_fixtures",)  # its fixtures: broker, sim_url, make_booth, watchers

# --------------------------------------------------------------------------------------------- pure parts


def test_parse_command_accepts_the_interface_shapes() -> None:
    p = parse_command("capture", b'{"request_id":"r1","profile":"cartoon","params":{"prompt":"hi"},"ttl_s":30,"ts":1}')
    assert (p.request_id, p.command.action, p.command.source, p.command.profile) == ("r1", "capture", "mqtt", "cartoon")
    assert p.command.params == {"prompt": "hi"} and p.command.request_id == "r1" and (p.ttl_s, p.ts) == (30, 1)
    for action in ("cancel", "retry", "print"):
        p = parse_command(action, b'{"request_id":"x","job_id":"abc"}')
        assert (p.command.action, p.command.job_id) == (action, "abc")
    assert parse_command("print", b'{"request_id":"x"}').command.job_id is None  # the latest job, like a button


@pytest.mark.parametrize(
    "action,payload,rid",
    [
        ("capture", b"\xff\xfe", None),
        ("capture", b"not json", None),
        ("capture", b"[1,2]", None),
        ("capture", b'{"profile":"cartoon"}', None),
        ("capture", b'{"request_id":5}', None),
        ("capture", b'{"request_id":""}', None),
        ("capture", json.dumps({"request_id": "x" * 129}).encode(), None),
        ("capture", b'{"request_id":"r","ttl_s":NaN}', None),
        ("capture", b'{"request_id":"r","ttl_s":0}', "r"),
        ("capture", b'{"request_id":"r","ttl_s":true}', "r"),
        ("capture", b'{"request_id":"r","ts":-1}', "r"),
        ("capture", b'{"request_id":"r","ts":1700000000000}', "r"),
        ("capture", b'{"request_id":"r","params":[1]}', "r"),
        ("capture", b'{"request_id":"r","profile":7}', "r"),
        ("capture", b'{"request_id":"r","profil":"cartoon"}', "r"),
        ("cancel", b'{"request_id":"r","job_id":3}', "r"),
        ("cancel", b'{"request_id":"r","profile":"cartoon"}', "r"),
        ("reboot", b'{"request_id":"r"}', "r"),
        ("capture", b"[" * 100_000, None),
        ("capture", b" " * (64 * 1024 + 1), None),
    ],
)
def test_parse_command_rejects_bad_payloads(action: str, payload: bytes, rid: str | None) -> None:
    with pytest.raises(Rejected) as e:
        parse_command(action, payload)
    assert e.value.code == "bad_request" and e.value.request_id == rid


def test_age_is_measured_from_ts() -> None:
    p = parse_command("capture", b'{"request_id":"r","ttl_s":10,"ts":1000}')
    check_age(p, 1009.9)
    with pytest.raises(Rejected) as e:
        check_age(p, 1010.1)
    assert e.value.code == "expired"
    check_age(parse_command("capture", b'{"request_id":"r","ttl_s":10}'), 1e12)  # no ts: age unknown, runs


def test_request_cache_is_an_lru_with_a_ttl() -> None:
    now = [0.0]
    cache = RequestCache(size=3, ttl_s=100, clock=lambda: now[0])
    for rid in "abcd":
        cache.resolve(cache.add(rid, Reply("capture")), {"request_id": rid})
    assert cache.lookup("a", Reply("capture")) is None  # evicted: the oldest of four
    assert cache.lookup("b", Reply("capture")).response == {"request_id": "b"}  # type: ignore[union-attr]
    now[0] = 101
    assert cache.lookup("c", Reply("capture")) is None  # expired
    pending = cache.add("p", Reply("capture"))
    cache.lookup("p", Reply("cancel"))
    assert [w.action for w in cache.resolve(pending, {"ok": 1})] == ["capture", "cancel"]


def test_topics() -> None:
    t = Topics("ea", "booth-1")
    assert t.command_action("ea/booth-1/cmd/capture") == "capture"
    assert t.command_action("ea/fleet/cmd/print") == "print"
    assert t.command_action("ea/booth-1/cmd/capture/x") is None
    assert t.command_action("ea/booth-2/cmd/capture") is None
    assert t.response("capture") == "ea/booth-1/response/capture"
    assert t.ha_config == "homeassistant/device/booth-1/config"


# --------------------------------------------------------------------------------------------- end to end


def test_capture_command_runs_a_job_and_publishes_response_events_and_result(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B = booth.B
    w = watchers(broker.port, [f"{B}/response/+", f"{B}/events", f"{B}/result", f"{B}/state", f"{B}/status"])
    w.publish(f"{B}/cmd/capture", {"request_id": "r-1", "profile": "cartoon", "params": {"prompt": "a hat"}})
    resp = response_to(w, B, "r-1")
    assert resp["status"] == "ok"
    job_id = resp["data"]["job_id"]
    assert resp["data"]["state"] == "captured" and resp["data"]["profile"] == "cartoon"

    done = w.wait(lambda m: m.topic == f"{B}/events" and m.json()["type"] == "job.done", timeout=20).json()
    types = [m.json()["type"] for m in w.on(f"{B}/events") if m.json().get("job_id") == job_id]
    assert types[0] == "job.captured" and "job.submitted" in types and types[-1] == "job.done"
    assert done["job_id"] == job_id and done["profile"] == "cartoon" and done["request_id"] == "r-1"
    assert done["outputs"] and all({"type", "url", "path"} <= set(o) for o in done["outputs"])

    w.wait(lambda m: m.topic == f"{B}/result")
    late = watchers(broker.port, [f"{B}/result", f"{B}/result/url", f"{B}/state", f"{B}/status"])
    result = late.wait(lambda m: m.topic == f"{B}/result")
    assert result.retain and result.json() == {"job_id": job_id, "profile": "cartoon", "outputs": done["outputs"]}
    assert Path(result.json()["outputs"][0]["path"]).is_file()
    url = late.wait(lambda m: m.topic == f"{B}/result/url")
    assert url.retain and url.payload.decode() == done["outputs"][0]["url"]
    assert late.wait(lambda m: m.topic == f"{B}/status").payload == b"online"
    state = late.wait(lambda m: m.topic == f"{B}/state")
    assert state.retain
    assert {"mode", "queue", "current_job", "last_error", "version"} <= set(state.json())
    # the retained state catches up with the finished job
    late.wait(lambda m: m.topic == f"{B}/state" and m.json()["queue"].get("done") == 1)


def test_the_bridge_is_a_service_alive_while_it_runs_even_without_a_broker(make_booth, broker) -> None:
    from tests.support.mosquitto import free_port

    booth = make_booth(connect=False)
    assert not booth.bridge.alive and not booth.bridge.connected
    booth.start_bridge()
    assert booth.bridge.alive and booth.bridge.connected
    booth.bridge.stop()
    assert not booth.bridge.alive and not booth.bridge.connected

    nowhere = make_booth(port=free_port(), connect=False)  # nothing listens there: paho keeps retrying
    nowhere.bridge.start()
    wait_until(lambda: nowhere.bridge.connect_failures >= 1, what="a failed connection attempt")
    assert nowhere.bridge.alive and not nowhere.bridge.connected
    nowhere.bridge.stop()
    assert not nowhere.bridge.alive


def test_duplicate_request_id_runs_once_and_gets_the_same_response(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B = booth.B
    w = watchers(broker.port, [f"{B}/response/+"])
    cmd = {"request_id": "dup-1", "params": {"prompt": "once"}}
    w.publish(f"{B}/cmd/capture", cmd)
    w.publish(f"{B}/cmd/capture", cmd)  # while the first may still be running
    first = response_to(w, B, "dup-1")
    w.publish(f"{B}/cmd/capture", cmd)  # after it answered
    w.publish(f"{booth.prefix}/fleet/cmd/capture", cmd)  # the same id on the fleet topic is the same request
    wait_until(lambda: len(answers_to(w, B, "dup-1")) >= 4, what="four answers")
    settle(w, B)  # and nothing more comes
    answers = answers_to(w, B, "dup-1")
    assert len(answers) == 4 and len(set(answers)) == 1, answers
    assert json.loads(answers[0]) == first and first["status"] == "ok"
    assert booth.jobs() == 1

    w.publish(f"{booth.prefix}/fleet/cmd/capture", {"request_id": "fleet-1"})
    assert response_to(w, B, "fleet-1")["status"] == "ok"
    assert booth.jobs() == 2


def test_expired_command_is_refused_and_nothing_runs(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B = booth.B
    w = watchers(broker.port, [f"{B}/response/+"])
    w.publish(f"{B}/cmd/capture", {"request_id": "old", "ts": time.time() - 120, "ttl_s": 5})
    resp = response_to(w, B, "old")
    assert resp["status"] == "error" and resp["error"]["code"] == "expired"
    w.publish(f"{B}/cmd/capture", {"request_id": "fresh", "ts": time.time(), "ttl_s": 30})
    assert response_to(w, B, "fresh")["status"] == "ok"
    assert booth.jobs() == 1


def test_mqtt5_response_topic_and_correlation_data_come_back(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B = booth.B
    reply = f"{booth.prefix}/replies/me/42"  # below the default response_topic_prefix
    w = watchers(broker.port, [f"{B}/response/+", f"{booth.prefix}/replies/#"])
    corr = b"\x00\x01corr-42"
    w.publish(f"{B}/cmd/capture", {"request_id": "rt-1"}, props=reply_props(corr, reply))
    m = w.wait(lambda m: m.topic == reply)
    assert m.correlation == corr and m.json()["request_id"] == "rt-1" and m.json()["status"] == "ok"
    on_b = w.wait(lambda m: m.topic == f"{B}/response/capture")
    assert on_b.payload == m.payload and on_b.correlation == corr


def test_response_topics_cannot_reach_the_agents_own_or_home_assistants_topics(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B = booth.B
    ha, ok = "homeassistant/device/x/config", f"{booth.prefix}/replies/ok"
    w = watchers(broker.port, [f"{B}/response/+", f"{B}/status", f"{B}/result/url", ha, ok])
    for i, rt in enumerate([ha, f"{B}/status", f"{B}/result/url", ok]):
        w.publish(f"{B}/cmd/cancel", {"request_id": f"rt-{i}"}, props=reply_props(b"c", rt))
    for i in range(3):  # refused, with an error on B/response/cancel
        assert response_to(w, B, f"rt-{i}", action="cancel")["error"]["code"] == "bad_request"
    assert w.wait(lambda m: m.topic == ok).json()["request_id"] == "rt-3"  # a reply topic below the prefix works
    settle(w, B, "cancel")  # whatever the four answers published has arrived
    hijacked = [m for m in w.msgs if m.topic in (ha, f"{B}/status", f"{B}/result/url") and b"request_id" in m.payload]
    assert hijacked == []


def test_a_request_id_is_deduplicated_per_action(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B = booth.B
    w = watchers(broker.port, [f"{B}/response/+"])
    w.publish(f"{B}/cmd/capture", {"request_id": "same-1"})
    assert response_to(w, B, "same-1")["status"] == "ok"
    w.publish(f"{B}/cmd/cancel", {"request_id": "same-1"})  # not an echo of the capture's answer
    resp = response_to(w, B, "same-1", action="cancel")
    assert resp["status"] in ("ok", "error") and resp.get("data", {}).get("state") != "captured"


def test_param_not_in_remote_params_is_refused(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B = booth.B
    w = watchers(broker.port, [f"{B}/response/+"])
    w.publish(f"{B}/cmd/capture", {"request_id": "p-1", "params": {"model": "other"}})
    resp = response_to(w, B, "p-1")
    assert resp["status"] == "error" and resp["error"]["code"] == "bad_request"
    w.publish(f"{B}/cmd/capture", {"request_id": "p-2", "profile": "nope"})
    assert response_to(w, B, "p-2")["status"] == "error"
    assert booth.jobs() == 0


def test_full_disk_is_refused_with_a_clear_error_response(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B = booth.B
    booth.agent.config.queue.min_free_disk_mb = 10**9  # more than any disk has: "full"
    w = watchers(broker.port, [f"{B}/response/+", f"{B}/events"])
    w.publish(f"{B}/cmd/capture", {"request_id": "disk-1"})
    resp = response_to(w, B, "disk-1")
    assert resp["status"] == "error" and resp["error"]["code"] == "disk_full"
    assert resp["error"]["message"].startswith("storage full: ")
    ev = w.wait(lambda m: m.topic == f"{B}/events" and m.json().get("type") == "capture.refused")
    assert ev.json()["message"] == resp["error"]["message"]
    assert booth.jobs() == 0


def test_retained_commands_are_refused(make_booth, watchers, broker) -> None:
    booth = make_booth(connect=False)
    B = booth.B
    w = watchers(broker.port, [f"{B}/response/+"])
    w.publish(f"{B}/cmd/capture", {"request_id": "ret-1"}, retain=True)  # waiting for the bridge's subscription
    booth.start_bridge()
    resp = response_to(w, B, "ret-1")
    assert resp["status"] == "error" and "retained" in resp["error"]["message"]
    w.publish(f"{B}/cmd/capture", {"request_id": "ret-2"}, retain=True)  # live, to a subscribed bridge
    assert response_to(w, B, "ret-2")["status"] == "error"
    w.publish(f"{B}/cmd/capture", b"", retain=True)  # clear it
    assert booth.jobs() == 0


def test_state_is_coalesced(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B = booth.B
    w = watchers(broker.port, [f"{B}/state", f"{B}/response/+"])
    w.wait(lambda m: m.topic == f"{B}/state")
    start = w.mark()
    t0 = time.monotonic()
    for i in range(8):
        w.publish(f"{B}/cmd/capture", {"request_id": f"burst-{i}"})
    for _ in range(300):
        booth.agent.events.publish("agent.state")
    w.wait(lambda m: m.topic == f"{B}/state" and m.json()["queue"].get("done") == 8, timeout=30, since=start)
    elapsed = time.monotonic() - t0
    n = len(w.on(f"{B}/state", since=start))
    assert n <= 4 * elapsed + 2, (n, elapsed)  # at most four a second (+ the connect/first publish)


def test_broker_restart_reconnects_resubscribes_and_republishes_within_5s(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B = booth.B
    broker.kill()
    wait_until(lambda: not booth.bridge.connected, timeout=5, what="the bridge to see the broker gone")
    # two failed attempts (0.5 s, then 1 s later): the reconnect backoff has grown to 2 s and keeps growing
    failed = booth.bridge.connect_failures
    wait_until(lambda: booth.bridge.connect_failures >= failed + 2, timeout=5, what="two failed reconnects")
    (broker.dir / "mosquitto.db").unlink(missing_ok=True)  # a broker that lost everything: no session, no retained
    broker.start()
    t0 = time.monotonic()
    w = watchers(broker.port, [f"{B}/state", f"{B}/status", f"{B}/response/+"])
    state = w.wait(lambda m: m.topic == f"{B}/state", timeout=5)
    assert state.at - t0 < 5.0 and state.json()["mode"]
    assert w.wait(lambda m: m.topic == f"{B}/status", timeout=5).payload == b"online"
    # re-subscribed: a command works again, still within the 5 s
    while True:
        mark = w.mark()
        w.publish(f"{B}/cmd/capture", {"request_id": f"after-{mark}"})
        try:
            resp = response_to(w, B, f"after-{mark}", since=mark, timeout=0.3)
            break
        except AssertionError:
            assert time.monotonic() - t0 < 5.0, "no response within 5 s of the broker restart"
    assert resp["status"] == "ok" and time.monotonic() - t0 < 5.0
    assert booth.bridge.connects == 2


def test_qos1_commands_sent_while_the_agent_was_away_run_exactly_once(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B = booth.B
    booth.bridge.stop()  # a clean goodbye: offline, but the persistent session stays on the broker
    status = watchers(broker.port, [f"{B}/status"])
    assert status.wait(lambda m: m.topic == f"{B}/status").payload == b"offline"

    sender = watchers(broker.port, [])
    for rid in ("away-1", "away-2", "away-3", "away-1"):  # the last one is a duplicate
        sender.publish(f"{B}/cmd/capture", {"request_id": rid})  # QoS 1, PUBACKed by the broker
    sender.close()
    status.close()
    broker.stop()  # and the broker restarts meanwhile: its persistence keeps the queued commands
    broker.start()

    w = watchers(broker.port, [f"{B}/response/+"])
    booth.start_bridge(MqttBridge(booth.agent))
    answers = {rid: response_to(w, B, rid) for rid in ("away-1", "away-2", "away-3")}
    assert all(a["status"] == "ok" for a in answers.values())
    wait_until(lambda: len(answers_to(w, B, "away-1")) >= 2, timeout=5, what="the duplicate's answer")
    settle(w, B)  # and nothing more comes
    dup = [json.loads(p) for p in answers_to(w, B, "away-1")]
    assert len(dup) == 2 and dup[0] == dup[1]
    assert booth.jobs() == 3


LAST_WILL_AGENT = """
import json, sys, time
from pathlib import Path
from agent.config import parse_config
from agent.core import Agent
from agent.mqtt import MqttBridge

raw = json.loads(sys.argv[1])
agent = Agent(parse_config(raw, Path(sys.argv[2])))
agent.start()
bridge = MqttBridge(agent)
bridge.start()
if not bridge.wait_connected(10):
    sys.exit(3)
print("ready", flush=True)
time.sleep(600)
"""


def test_last_will_says_offline_when_the_agent_dies(tmp_path, broker, sim_url, watchers) -> None:
    raw = booth_config(tmp_path, broker.port, sim_url)
    B = f"{raw['mqtt']['topic_prefix']}/{raw['device']['id']}"
    script = tmp_path / "agent_proc.py"
    script.write_text(LAST_WILL_AGENT)
    proc = subprocess.Popen(
        [sys.executable, str(script), json.dumps(raw), str(tmp_path / "config.toml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, KEY_ENV: API_KEY},
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready and proc.stdout.readline().strip() == b"ready", proc.stderr.read1(4096)  # type: ignore[union-attr]
        w = watchers(broker.port, [f"{B}/status"])
        w.wait(lambda m: m.topic == f"{B}/status" and m.payload == b"online")
        mark = w.mark()
        proc.kill()  # SIGKILL: no goodbye, the socket just closes
        t0 = time.monotonic()
        m = w.wait(lambda m: m.topic == f"{B}/status", since=mark, timeout=5)
        assert m.payload == b"offline" and m.at - t0 < 3
    finally:
        proc.kill()
        proc.wait()
    fresh = watchers(broker.port, [f"{B}/status"])
    last = fresh.wait(lambda m: m.topic == f"{B}/status")
    assert last.retain and last.payload == b"offline"


# --------------------------------------------------------------------------------------------- fuzzing

_json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)
)
_json = st.recursive(
    _json_scalar,
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)),
    max_leaves=8,
)
_rid = st.text(min_size=1, max_size=20)
_bad_rid = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.just(""),
    st.text(min_size=129, max_size=200),
    st.lists(_json_scalar, max_size=2),
    st.dictionaries(st.text(max_size=4), _json_scalar, max_size=2),
)
_not_str = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(_json_scalar),
    st.dictionaries(st.text(max_size=4), _json_scalar),
)
_bad_field = st.one_of(
    st.tuples(st.just("profile"), _not_str.filter(lambda v: v is not None) | st.just("")),
    st.tuples(st.just("params"), _not_str.filter(lambda v: v is not None and not isinstance(v, dict))),
    st.tuples(
        st.just("ttl_s"),
        st.one_of(
            st.floats(max_value=0, allow_nan=False),
            st.integers(max_value=0),
            st.booleans(),
            st.text(max_size=5),
            st.lists(_json_scalar),
        ),
    ),
    st.tuples(
        st.just("ts"),
        st.one_of(
            st.floats(max_value=-0.001, allow_nan=False, allow_infinity=False),
            st.integers(min_value=10**11 + 1),
            st.booleans(),
            st.text(max_size=5),
        ),
    ),
    st.tuples(st.just("job_id"), _not_str.filter(lambda v: v is not None) | st.just("")),
)
_allowed = {"request_id", "profile", "params", "ttl_s", "ts", "job_id"}


@st.composite
def malformed(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(action, payload, why): a command no device may run."""
    action = draw(st.sampled_from(ACTIONS))
    kind = draw(
        st.sampled_from(
            [
                "bytes",
                "not_object",
                "no_rid",
                "bad_rid",
                "bad_field",
                "unknown_key",
                "unknown_action",
                "expired",
                "remote_param",
                "unknown_profile",
                "huge",
            ]
        )
    )
    if kind == "bytes":
        raw = draw(st.binary(max_size=64))
        try:
            obj = json.loads(raw)
            if isinstance(obj, dict):
                raw = b"{" + raw  # make sure it is not an object
        except (ValueError, UnicodeDecodeError):
            pass
        return action, raw, kind
    if kind == "not_object":
        return action, json.dumps(draw(_json.filter(lambda v: not isinstance(v, dict)))).encode(), kind
    if kind == "no_rid":
        d = draw(st.dictionaries(st.text(max_size=8).filter(lambda k: k != "request_id"), _json, max_size=4))
        return action, json.dumps(d).encode(), kind
    if kind == "bad_rid":
        return action, json.dumps({"request_id": draw(_bad_rid), "profile": "cartoon"}).encode(), kind
    rid = draw(_rid)
    if kind == "bad_field":
        key, value = draw(_bad_field)  # profile/params on cancel, job_id on capture: unknown keys, wrong as well
        return action, json.dumps({"request_id": rid, key: value}).encode(), kind
    if kind == "unknown_key":
        key = draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in _allowed))
        return action, json.dumps({"request_id": rid, key: draw(_json)}).encode(), kind
    if kind == "unknown_action":
        name = draw(
            st.text(
                st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/+#"), min_size=1, max_size=12
            ).filter(lambda a: a not in ACTIONS)
        )
        return name, json.dumps({"request_id": rid}).encode(), kind
    if kind == "expired":
        ttl = draw(st.floats(min_value=0.001, max_value=3600))
        age = draw(st.floats(min_value=ttl + 1, max_value=ttl + 10**6))
        return action, json.dumps({"request_id": rid, "ttl_s": ttl, "ts": time.time() - age}).encode(), kind
    if kind == "remote_param":
        key = draw(st.text(min_size=1, max_size=10).filter(lambda k: k != "prompt"))
        return "capture", json.dumps({"request_id": rid, "params": {key: draw(_json)}}).encode(), kind
    if kind == "unknown_profile":
        name = draw(st.text(min_size=1, max_size=20).filter(lambda n: n != "cartoon"))
        return "capture", json.dumps({"request_id": rid, "profile": name}).encode(), kind
    return action, b" " * (64 * 1024 + draw(st.integers(1, 1000))), kind  # huge


def test_a_thousand_malformed_payloads_all_get_errors_and_the_bridge_survives(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B = booth.B
    w = watchers(broker.port, [f"{booth.prefix}/replies/#"])
    counter = itertools.count()
    kinds: dict[str, int] = {}

    @settings(max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(malformed())
    def one(case: tuple[str, bytes, str]) -> None:
        action, payload, kind = case
        n = next(counter)
        corr = f"fz-{n}".encode()
        w.publish(f"{B}/cmd/{action}", payload, props=reply_props(corr, f"{booth.prefix}/replies/{B}"))
        body = w.wait_corr(corr).json()
        assert body["status"] == "error", (kind, payload[:200], body)
        assert set(body["error"]) == {"code", "message"}
        kinds[kind] = kinds.get(kind, 0) + 1

    one()
    sent = next(counter)
    assert sent >= 1000, sent
    assert len(kinds) >= 10, kinds
    assert booth.jobs() == 0  # nothing ran
    assert booth.bridge.connected
    w2 = watchers(broker.port, [f"{B}/response/+"])
    rid = f"still-works-{uuid.uuid4()}"  # hypothesis never drew this one
    w2.publish(f"{B}/cmd/capture", {"request_id": rid})
    assert response_to(w2, B, rid)["status"] == "ok"
    assert booth.jobs() == 1


# --------------------------------------------------------------------------------------------- Home Assistant


def test_home_assistant_discovery_and_reannounce(make_booth, watchers, broker) -> None:
    booth = make_booth(homeassistant_discovery=True)
    B = booth.B
    dev = booth.agent.config.device.id
    topic = f"homeassistant/device/{dev}/config"
    w = watchers(broker.port, [topic, f"{B}/response/+"])
    first = w.wait(lambda m: m.topic == topic)
    # kept for Home Assistant's next start: a later subscriber gets it as retained (the first one may have seen
    # it live, when the booth announced while the watcher was subscribing)
    late = watchers(broker.port, [topic])
    assert late.wait(lambda m: m.topic == topic).retain
    doc = first.json()
    assert doc == ha_discovery(booth.agent.config, booth.bridge.topics)
    assert doc["dev"]["ids"] and doc["o"]["name"] == "edge-agent"
    assert doc["availability_topic"] == f"{B}/status"
    cmps = doc["cmps"]
    button = cmps["capture_cartoon"]
    assert button["p"] == "button" and button["command_topic"] == f"{B}/cmd/capture"
    assert cmps["result"]["p"] == "image" and cmps["result"]["url_topic"] == f"{B}/result/url"
    assert {cmps["mode"]["state_topic"], cmps["queue"]["state_topic"]} == {f"{B}/state"}
    assert len({c["unique_id"] for c in cmps.values()}) == len(cmps)
    # the booth owner's numbers: sensors over B/state's "today" (agent/stats.py)
    for key in ("captures", "done", "failed", "prints", "median_s"):
        assert (
            cmps[f"today_{key}"]["state_topic"] == f"{B}/state" and f".{key}" in cmps[f"today_{key}"]["value_template"]
        )
    assert set(booth.agent.state()["today"]) == {"captures", "done", "failed", "prints", "median_s"}

    # what Home Assistant sends when the button is pressed: its template rendered with now()
    t = time.time()
    rendered = re.sub(r"\{%.*?%\}", "", button["command_template"]).replace("{{ t }}", repr(t))
    w.publish(button["command_topic"], rendered.encode())
    resp = response_to(w, B, f"ha-{t!r}")
    assert resp["status"] == "ok" and booth.jobs() == 1

    mark = w.mark()
    w.publish("homeassistant/status", b"offline")
    w.publish("homeassistant/status", b"online")  # Home Assistant restarted: announce again
    again = w.wait(lambda m: m.topic == topic, since=mark)
    assert again.json() == doc
    settle(w, B)  # both status messages have been handled
    assert len(w.on(topic, since=mark)) == 1  # "offline" announced nothing


# --------------------------------------------------------------------------------------------- protocol, auth, TLS


def test_forced_mqtt311_works_with_a_persistent_session(make_booth, watchers, broker) -> None:
    booth = make_booth(protocol="3.1.1")
    B = booth.B
    assert booth.bridge.protocol == "3.1.1"
    assert re.search(rf"as {booth.bridge.client_id} \(p2, c0,", broker.log_tail(200)), "not 3.1.1 / persistent"
    w = watchers(broker.port, [f"{B}/response/+", f"{B}/status"], protocol=mqtt.MQTTv311)
    w.publish(f"{B}/cmd/capture", {"request_id": "v311-1"})
    assert response_to(w, B, "v311-1")["status"] == "ok"
    booth.bridge.stop()
    w.publish(f"{B}/cmd/capture", {"request_id": "v311-away"})
    booth.start_bridge(MqttBridge(booth.agent))
    assert response_to(w, B, "v311-away")["status"] == "ok"
    assert booth.jobs() == 2


def test_auto_protocol_falls_back_to_311_when_the_broker_refuses_mqtt5(make_booth, watchers, broker) -> None:
    proxy = TcpProxy(broker.port, refuse_mqtt5=True)
    try:
        booth = make_booth(port=proxy.port)  # protocol = "auto"
        B = booth.B
        assert booth.bridge.protocol == "3.1.1" and proxy.refused >= 1
        assert re.search(rf"as {booth.bridge.client_id} \(p2, c0,", broker.log_tail(200))
        w = watchers(broker.port, [f"{B}/response/+"])
        w.publish(f"{B}/cmd/capture", {"request_id": "fb-1"})
        assert response_to(w, B, "fb-1")["status"] == "ok"
        booth.close()  # before the proxy goes: no reset connection
    finally:
        proxy.close()


def test_username_password_and_no_secret_is_ever_published_or_logged(
    tmp_path, sim_url, watchers, monkeypatch, caplog
) -> None:
    password = "pw-Zq9-very-secret"
    secure = Mosquitto(tmp_path / "secure-broker", users={"booth": password, "watch": "watch-pw"})
    monkeypatch.setenv("EDGE_AGENT_TEST_MQTT_PW", password)
    caplog.set_level(logging.DEBUG)
    booth = None
    try:
        everything = watchers(secure.port, ["#"], username="watch", password="watch-pw")
        raw = booth_config(
            tmp_path,
            secure.port,
            sim_url,
            username="booth",
            password_env="EDGE_AGENT_TEST_MQTT_PW",
            homeassistant_discovery=True,
        )
        booth = Booth(raw, tmp_path)
        B = booth.B
        everything.publish(f"{B}/cmd/capture", {"request_id": "auth-1"})
        everything.wait(lambda m: m.topic == f"{B}/events" and m.json()["type"] == "job.done", timeout=20)
        everything.publish(f"{B}/cmd/capture", {"request_id": "auth-2", "params": {"model": "x"}})
        response_to(everything, B, "auth-2")

        wrong = dict(raw, mqtt={**raw["mqtt"], "client_id": "wrong-pw"})
        monkeypatch.setenv("EDGE_AGENT_TEST_MQTT_PW", "not-the-" + password)
        bad = MqttBridge(Agent(parse_config(json.loads(json.dumps(wrong)), tmp_path / "config.toml")))
        bad.start()
        wait_until(
            lambda: any(
                "refused the connection" in r.getMessage() and r.name.startswith("agent.mqtt") for r in caplog.records
            ),
            what="the broker to refuse the wrong password",
        )
        assert not bad.connected
        bad.stop()
        bad.agent.stop()
        assert any("refused" in r.getMessage() and r.name.startswith("agent.mqtt") for r in caplog.records)

        everything.close()
        published = b"\n".join(m.payload for m in everything.msgs)
        logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
        for secret in (password, API_KEY):
            assert secret.encode() not in published
            assert secret not in logged
    finally:
        if booth is not None:
            booth.close()
        secure.stop()


def test_tls_with_a_private_ca(tmp_path, sim_url, watchers) -> None:
    ca, cert, key = make_tls_files(tmp_path / "tls")
    tls_broker = Mosquitto(tmp_path / "tls-broker", tls=(ca, cert, key))
    booth = None
    try:
        booth = Booth(booth_config(tmp_path, tls_broker.port, sim_url, tls=True, ca_file=str(ca)), tmp_path)
        B = booth.B
        w = watchers(tls_broker.port, [f"{B}/response/+"], tls_ca=ca)
        w.publish(f"{B}/cmd/capture", {"request_id": "tls-1"})
        assert response_to(w, B, "tls-1")["status"] == "ok"
        w.close()
    finally:
        if booth is not None:
            booth.close()
        tls_broker.stop()
