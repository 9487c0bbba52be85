"""MQTT truthfulness and limits (issue 5/11), each against a real Mosquitto and real Agents: Response Topics only
under a configured prefix, two booths with one client id, `result` after a broker that lost everything, `state`
after a clean stop, Home Assistant entities removed when discovery is turned off or a profile goes."""

from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import ConfigError, parse_config
from agent.mqtt import MqttBridge, Topics, ha_discovery
from agent.mqtt.guard import ClientIdGuard
from tests.support.mqtt import Booth, Watcher, booth_config, reply_props, response_to, settle
from tests.support.proc import run_cli, wait_until

pytest_plugins = ("tests.support.mqtt_fixtures",)


# --------------------------------------------------------------------------------------------- Response Topics


def test_a_response_topic_outside_the_prefix_is_refused_and_nothing_runs(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B, prefix = booth.B, booth.prefix
    w = watchers(broker.port, [f"{B}/response/+", "zigbee2mqtt/#", f"{prefix}/replies/#", "elsewhere/#"])
    w.publish(f"{B}/cmd/capture", {"request_id": "z-1"}, props=reply_props(b"z", "zigbee2mqtt/front_door/set"))
    resp = response_to(w, B, "z-1")
    assert resp["status"] == "error" and resp["error"]["code"] == "bad_request", resp
    assert f"{prefix}/replies/" in resp["error"]["message"]
    assert w.on(f"{B}/response/capture")[-1].correlation == b"z"  # the sender can still match the refusal
    w.publish(f"{B}/cmd/capture", {"request_id": "ok-1"}, props=reply_props(b"k", f"{prefix}/replies/app-7"))
    assert w.wait(lambda m: m.topic == f"{prefix}/replies/app-7").json()["status"] == "ok"
    for i, rt in enumerate([f"{prefix}/replies", f"{prefix}/repliesX/a", "elsewhere/a", f"{prefix}/fleet/cmd/capture"]):
        w.publish(f"{B}/cmd/capture", {"request_id": f"no-{i}"}, props=reply_props(b"n", rt))
        assert response_to(w, B, f"no-{i}")["status"] == "error"
    settle(w, B)
    assert [m.topic for m in w.msgs if m.topic.startswith(("zigbee2mqtt/", "elsewhere/"))] == []
    assert booth.jobs() == 1  # only ok-1 ran


def test_which_response_topics_are_allowed() -> None:
    t = Topics("ea", "booth-1")
    assert t.replies == "ea/replies"
    for ok in ["ea/booth-1/response/capture", "ea/replies/app", "ea/replies/app/7"]:
        assert t.response_topic_allowed(ok), ok
    for bad in [
        "zigbee2mqtt/front_door/set",
        "ea/replies",
        "ea/repliesX/a",
        "ea/booth-1/status",
        "ea/booth-1/state",
        "ea/fleet/cmd/capture",
        "homeassistant/device/booth-1/config",
        "$SYS/broker",
        "ea/replies/+",
        "ea/replies/#",
        "",
    ]:
        assert not t.response_topic_allowed(bad), bad
    named_like_it = Topics("ea", "replies")  # a device called "replies": its own topics stay out of reach
    assert not named_like_it.response_topic_allowed("ea/replies/status")
    assert named_like_it.response_topic_allowed("ea/replies/response/x")
    custom = Topics("ea", "booth-1", reply_prefix="apps/answers/")
    assert custom.response_topic_allowed("apps/answers/me") and not custom.response_topic_allowed("ea/replies/me")
    wide = Topics("ea", "booth-1", reply_prefix="ea")  # even a prefix that covers the agent's own topics
    assert wide.response_topic_allowed("ea/other") and not wide.response_topic_allowed("ea/booth-1/result")


@pytest.mark.parametrize("bad", ["a/#", "a/+/b", "$SYS/x", "", "with space"])
def test_a_response_topic_prefix_must_be_a_plain_topic(tmp_path, bad) -> None:
    raw = booth_config(tmp_path, 1883, "http://127.0.0.1:1", response_topic_prefix=bad)
    with pytest.raises(ConfigError) as e:
        parse_config(raw, tmp_path / "config.toml")
    assert "mqtt.response_topic_prefix" in str(e.value)


def test_the_response_topic_prefix_is_configurable(make_booth, watchers, broker) -> None:
    booth = make_booth(response_topic_prefix="apps/answers")
    B = booth.B
    w = watchers(broker.port, [f"{B}/response/+", "apps/#"])
    w.publish(f"{B}/cmd/cancel", {"request_id": "c-1"}, props=reply_props(b"c", "apps/answers/me"))
    assert w.wait(lambda m: m.topic == "apps/answers/me").correlation == b"c"
    w.publish(f"{B}/cmd/cancel", {"request_id": "c-2"}, props=reply_props(b"c", f"{booth.prefix}/replies/me"))
    assert response_to(w, B, "c-2", action="cancel")["error"]["code"] == "bad_request"


# --------------------------------------------------------------------------------------------- one client id, twice


def _twin_config(tmp_path: Path, port: int, sim_url: str, **mqtt_over) -> tuple[dict, dict]:
    a = booth_config(tmp_path, port, sim_url, **mqtt_over)
    b = copy.deepcopy(a)
    b["device"]["state_dir"] = a["device"]["state_dir"] + "-twin"  # another Pi, the same device.id
    return a, b


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_two_booths_with_one_device_id_back_off_and_say_so(
    tmp_path, broker, sim_url, watchers, caplog, protocol
) -> None:
    """Each connection of one takes the session from the other (and `status` flips for both): count them in 12 s.
    Mosquitto 2.0 closes the old connection without a DISCONNECT reason, so this is the heuristic path."""
    caplog.set_level(logging.INFO, logger="agent.mqtt")
    raw_a, raw_b = _twin_config(tmp_path, broker.port, sim_url, protocol=protocol)
    B = f"{raw_a['mqtt']['topic_prefix']}/{raw_a['device']['id']}"
    w = watchers(broker.port, [f"{B}/status"])
    a = Booth(raw_a, tmp_path)
    b = Booth(raw_b, tmp_path, connect=False)
    try:
        mark, before = w.mark(), a.bridge.connects
        b.bridge.start()
        time.sleep(12)
        connects = a.bridge.connects - before + b.bridge.connects  # each one kicked the other booth off
        statuses = len(w.on(f"{B}/status", since=mark))
        print(f"MQTT {protocol}, two bridges with one client id: {connects} connections, {statuses} B/status in 12 s")
        assert connects <= 8 and statuses <= 8, (connects, statuses)  # were 25 and 24
        client_id = a.bridge.client_id
        problems = [x.bridge.problem for x in (a, b) if x.bridge.problem]
        assert problems and all(f"another client uses client id {client_id}" in p for p in problems), problems
        said = [r.getMessage() for r in caplog.records if "another client uses client id" in r.getMessage()]
        assert 1 <= len(said) <= 2, said  # once per bridge at most
    finally:
        b.close()
        a.close()
    final = watchers(broker.port, [f"{B}/status"])
    assert final.wait(lambda m: m.topic == f"{B}/status").payload == b"offline"


def test_the_guard_tells_a_fight_from_a_dropped_connection() -> None:
    now = [0.0]

    def cycle(g: ClientIdGuard, lasted: float, reason: int | None = None, from_server: bool = False) -> float | None:
        g.connected()
        now[0] += lasted
        delay = g.lost(reason, from_server)
        now[0] += delay or 0.5
        return delay

    g = ClientIdGuard("edge-agent-x", clock=lambda: now[0])
    assert cycle(g, 600) is None  # an ordinary drop after a long connection
    assert [cycle(g, 1), cycle(g, 1)] == [None, None] and g.problem is None  # two cut short: not yet
    assert cycle(g, 1) == 5 and "another client uses client id edge-agent-x" in (g.problem or "")
    assert [cycle(g, 5), cycle(g, 10), cycle(g, 20), cycle(g, 40), cycle(g, 59)] == [10, 20, 40, 60, 60]
    g.connected()
    now[0] += 89
    assert not g.settled()
    now[0] += 1
    assert g.settled() and g.problem is None and not g.settled()  # over: said once
    assert cycle(g, 3600, 142, True) == 5 and "session taken over" in (g.problem or "")  # MQTT 5: the broker says so

    other = ClientIdGuard("edge-agent-y", clock=lambda: now[0])
    assert [cycle(other, 1, 149, True) for _ in range(5)] == [None] * 5  # the broker gave another reason


def test_doctor_reports_the_client_id_fight(tmp_path, broker, sim_url) -> None:
    from tests.support.configs import write_config
    from tests.support.daemon import DaemonProcess

    raw = booth_config(tmp_path, broker.port, sim_url)
    raw["device"]["output_dir"] = str(tmp_path / "results")
    cfg = write_config(tmp_path / "config.toml", raw)
    client_id = f"edge-agent-{raw['device']['id']}"
    B = f"{raw['mqtt']['topic_prefix']}/{raw['device']['id']}"

    twin = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    twin.will_set(f"{B}/status", b"offline", qos=1, retain=True)
    twin.on_connect = lambda c, *_: c.publish(f"{B}/status", b"online", qos=1, retain=True)
    twin.reconnect_delay_set(0.5, 1)  # another booth with an old agent: it reconnects at once, every time
    twin.connect_async("127.0.0.1", broker.port)
    twin.loop_start()
    try:
        time.sleep(1)
        r = run_cli("doctor", "-c", str(cfg), "--json", env={"EDGE_AGENT_TEST_MQTT_KEY": "sk-test"})
        row = {c["name"]: c for c in json.loads(r.stdout)}["mqtt"]
        assert row["status"] == "WARN" and "another device" in row["detail"], row  # no daemon here, yet "online"

        daemon = DaemonProcess(cfg, tmp_path / "daemon.log", env={"EDGE_AGENT_TEST_MQTT_KEY": "sk-test"})
        daemon.start()
        try:
            state_file = Path(raw["device"]["state_dir"]) / "mqtt.json"
            wait_until(state_file.exists, timeout=15, what="the daemon to see the fight")
            r = run_cli("doctor", "-c", str(cfg), "--json", env={"EDGE_AGENT_TEST_MQTT_KEY": "sk-test"})
            row = {c["name"]: c for c in json.loads(r.stdout)}["mqtt"]
            assert r.returncode == 1 and row["status"] == "FAIL", row
            assert f"another client uses client id {client_id}" in row["detail"]
            r = run_cli("status", "-c", str(cfg), env={"EDGE_AGENT_TEST_MQTT_KEY": "sk-test"})
            assert f"another client uses client id {client_id}" in r.stdout, r.stdout  # `status` says it too
        finally:
            daemon.stop()
        assert not state_file.exists()  # a clean stop clears it
        log = daemon.log_text()
        assert log.count("another client uses client id") == 1, log[-3000:]
    finally:
        twin.disconnect()
        twin.loop_stop()


# --------------------------------------------------------------------------------------------- restart and stop


def test_result_is_republished_after_an_agent_restart_and_a_broker_that_lost_everything(
    tmp_path, broker, sim_url, watchers
) -> None:
    raw = booth_config(tmp_path, broker.port, sim_url)
    first = Booth(raw, tmp_path)
    B = first.B
    w = watchers(broker.port, [f"{B}/response/+", f"{B}/result"])
    w.publish(f"{B}/cmd/capture", {"request_id": "res-1"})
    job_id = response_to(w, B, "res-1")["data"]["job_id"]
    result = w.wait(lambda m: m.topic == f"{B}/result", timeout=20).json()
    assert result["job_id"] == job_id
    first.close()  # the daemon restarts ...

    second = Booth(raw, tmp_path)
    try:
        broker.kill()  # ... and later the broker restarts without its persistence file
        wait_until(lambda: not second.bridge.connected, timeout=5, what="the bridge to see the broker gone")
        (broker.dir / "mosquitto.db").unlink(missing_ok=True)
        broker.start()
        assert second.bridge.wait_connected(10)
        late = watchers(broker.port, [f"{B}/result", f"{B}/result/url"])
        again = late.wait(lambda m: m.topic == f"{B}/result", timeout=5)
        assert again.retain and again.json() == result
        assert late.wait(lambda m: m.topic == f"{B}/result/url").payload.decode() == result["outputs"][0]["url"]
    finally:
        second.close()


def test_a_clean_stop_leaves_state_stopped_and_status_offline(make_booth, watchers, broker) -> None:
    booth = make_booth()
    B = booth.B
    w = watchers(broker.port, [f"{B}/state", f"{B}/status"])
    assert w.wait(lambda m: m.topic == f"{B}/state").json()["mode"] == "ready"
    mark = w.mark()
    booth.bridge.stop()
    w.wait(lambda m: m.topic == f"{B}/status" and m.payload == b"offline", since=mark)
    time.sleep(1)  # and nothing after it
    after = [(m.topic, m.payload[:40]) for m in w.msgs[mark:]]
    assert after[-1] == (f"{B}/status", b"offline"), after
    late = watchers(broker.port, [f"{B}/state", f"{B}/status"])
    state = late.wait(lambda m: m.topic == f"{B}/state")
    assert state.retain and state.json()["mode"] == "stopped", state.json()
    assert late.wait(lambda m: m.topic == f"{B}/status").payload == b"offline"


# --------------------------------------------------------------------------------------------- Home Assistant


def _ha_booth(raw: dict, tmp_path: Path, *, profiles: list[str], discovery: bool) -> Booth:
    raw = copy.deepcopy(raw)
    base = raw["profiles"][0]
    raw["profiles"] = [dict(base, name=name) for name in profiles]
    raw["mqtt"]["homeassistant_discovery"] = discovery
    return Booth(raw, tmp_path)


def test_a_removed_profile_removes_its_home_assistant_button(tmp_path, broker, sim_url, watchers) -> None:
    raw = booth_config(tmp_path, broker.port, sim_url)
    topic = f"homeassistant/device/{raw['device']['id']}/config"
    w = watchers(broker.port, [topic])
    first = _ha_booth(raw, tmp_path, profiles=["cartoon", "oil"], discovery=True)
    doc = w.wait(lambda m: m.topic == topic).json()
    assert {"capture_cartoon", "capture_oil"} <= set(doc["cmps"])
    first.close()

    mark = w.mark()
    second = _ha_booth(raw, tmp_path, profiles=["cartoon"], discovery=True)
    try:
        removal = w.wait(lambda m: m.topic == topic and "capture_oil" in m.json()["cmps"], since=mark).json()
        assert removal["cmps"]["capture_oil"] == {"p": "button"}  # HA: a component with only `p` is removed
        assert removal["cmps"]["capture_cartoon"]["p"] == "button"
        final = w.wait(lambda m: m.topic == topic and "capture_oil" not in m.json()["cmps"], since=mark).json()
        assert final == ha_discovery(second.agent.config, second.bridge.topics)
        late = watchers(broker.port, [topic])
        assert late.wait(lambda m: m.topic == topic).json() == final  # what is retained is the clean document
    finally:
        second.close()
    third = _ha_booth(raw, tmp_path, profiles=["cartoon"], discovery=True)  # nothing removed this time
    mark = w.mark()
    try:
        assert third.bridge.wait_connected(5)
        w.wait(lambda m: m.topic == topic, since=mark)
        time.sleep(0.5)
        assert all("capture_oil" not in m.json()["cmps"] for m in w.on(topic, since=mark))
    finally:
        third.close()


def test_turning_discovery_off_removes_the_device(tmp_path, broker, sim_url, watchers) -> None:
    raw = booth_config(tmp_path, broker.port, sim_url)
    topic = f"homeassistant/device/{raw['device']['id']}/config"
    w = watchers(broker.port, [topic])
    first = _ha_booth(raw, tmp_path, profiles=["cartoon"], discovery=True)
    w.wait(lambda m: m.topic == topic)
    first.close()

    mark = w.mark()
    second = _ha_booth(raw, tmp_path, profiles=["cartoon"], discovery=False)
    try:
        cleared = w.wait(lambda m: m.topic == topic, since=mark)
        assert cleared.payload == b""  # an empty retained payload: HA removes the device and its entities
        late = Watcher(broker.port, [topic])
        time.sleep(0.5)
        assert late.on(topic) == []  # nothing retained any more
        late.close()
    finally:
        second.close()
    mark = w.mark()
    third = _ha_booth(raw, tmp_path, profiles=["cartoon"], discovery=False)
    try:
        time.sleep(0.5)
        assert w.on(topic, since=mark) == []  # cleared once, not on every start
    finally:
        third.close()


def test_the_bridge_stays_a_service_after_all_this(make_booth) -> None:
    booth = make_booth()
    assert booth.bridge.problem is None and booth.bridge.alive
    booth.bridge.stop()
    booth.start_bridge(MqttBridge(booth.agent))
    assert booth.bridge.connected
