"""The MQTT tests' shared parts: a real Agent with its MqttBridge (`Booth`), a recording test client (`Watcher`) and
the small waits the tests share. Their fixtures are in tests/support/mqtt_fixtures.py (`pytest_plugins`)."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.config import parse_config
from agent.core import Agent
from agent.mqtt import MqttBridge, no_delay

API_KEY = "sk-test"
KEY_ENV = "EDGE_AGENT_TEST_MQTT_KEY"
_ids = itertools.count(1)


def booth_config(tmp_path: Path, port: int, sim_url: str, **mqtt: Any) -> dict:
    n = next(_ids)
    return {
        "device": {"id": f"booth-{n}", "state_dir": str(tmp_path / f"state-{n}")},
        "camera": {"driver": "synthetic", "width": 320, "height": 240},
        "platforms": {"easy": {"kind": "easyai", "base_url": sim_url, "api_key_env": KEY_ENV}},
        "profiles": [
            {
                "name": "cartoon",
                "platform": "easy",
                "endpoint": "images.edits",
                "model": "cartoon",
                "prompt": "x",
                "remote_params": ["prompt"],
            },
        ],
        "http": {"listen": "127.0.0.1:0"},
        "queue": {"remote_rate_per_min": 6000},  # these tests are about the bridge; admission has its own
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": port, "topic_prefix": f"ea{n}", **mqtt},
    }


class Booth:
    """A real Agent and its MqttBridge."""

    def __init__(self, raw: dict, tmp_path: Path, *, connect: bool = True) -> None:
        self.raw = raw
        self.agent = Agent(parse_config(json.loads(json.dumps(raw)), tmp_path / "config.toml"))
        self.agent.start()
        self.bridge = MqttBridge(self.agent)
        self.B = self.bridge.topics.base
        self.prefix = raw["mqtt"]["topic_prefix"]
        if connect:
            self.start_bridge()

    def start_bridge(self, bridge: MqttBridge | None = None) -> None:
        if bridge is not None:
            self.bridge = bridge
        self.bridge.start()
        assert self.bridge.wait_connected(10), "bridge did not connect"

    def jobs(self) -> int:
        return sum(self.agent.state()["queue"].values())

    def close(self) -> None:
        if self.agent is None:
            return
        self.bridge.stop()
        self.agent.stop()
        self.agent = None  # type: ignore[assignment]


@dataclass
class Msg:
    topic: str
    payload: bytes
    retain: bool
    correlation: bytes | None
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


class Watcher:
    """A test client that records what it receives and can publish (MQTT 5 unless told otherwise)."""

    def __init__(
        self,
        port: int,
        topics: list[str],
        *,
        protocol: int = mqtt.MQTTv5,
        username: str | None = None,
        password: str | None = None,
        tls_ca: Path | None = None,
    ) -> None:
        self.msgs: list[Msg] = []
        self.closed = False
        self.by_corr: dict[bytes, Msg] = {}
        self.cond = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}", protocol=protocol
        )
        if username:
            self.client.username_pw_set(username, password)
        if tls_ca:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.client.on_message = self._on_message
        self.client.on_socket_open = no_delay
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if topics:
            self.client.subscribe([(t, 1) for t in topics])
            assert subscribed.wait(5), "watcher subscription not acknowledged"

    def _on_message(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        corr = getattr(m.properties, "CorrelationData", None) if m.properties is not None else None
        msg = Msg(
            m.topic, bytes(m.payload), bool(m.retain), bytes(corr) if corr is not None else None, time.monotonic()
        )
        with self.cond:
            self.msgs.append(msg)
            if corr is not None and "/replies/" in m.topic:
                self.by_corr[msg.correlation] = msg  # type: ignore[index]
            self.cond.notify_all()

    def wait(self, pred: Callable[[Msg], bool], timeout: float = 10.0, since: int = 0) -> Msg:
        deadline = time.monotonic() + timeout
        with self.cond:
            i = since
            while True:
                while i < len(self.msgs):
                    if pred(self.msgs[i]):
                        return self.msgs[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching message in {timeout}s; got {[m.topic for m in self.msgs][-20:]}")
                self.cond.wait(left)

    def wait_corr(self, corr: bytes, timeout: float = 5.0) -> Msg:
        deadline = time.monotonic() + timeout
        with self.cond:
            while corr not in self.by_corr:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no reply with correlation {corr!r}")
                self.cond.wait(left)
            return self.by_corr[corr]

    def on(self, topic: str, since: int = 0) -> list[Msg]:
        with self.cond:
            return [m for m in self.msgs[since:] if m.topic == topic]

    def mark(self) -> int:
        with self.cond:
            return len(self.msgs)

    def publish(self, topic: str, payload: Any, *, retain: bool = False, props: Properties | None = None) -> None:
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        info = self.client.publish(topic, data, qos=1, retain=retain, properties=props)
        info.wait_for_publish(5)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.client.disconnect()
            self.client.loop_stop()


def response_to(
    w: Watcher, B: str, request_id: str | None, action: str = "capture", since: int = 0, timeout: float = 10.0
) -> dict:
    m = w.wait(
        lambda m: m.topic == f"{B}/response/{action}" and m.json().get("request_id") == request_id,
        timeout=timeout,
        since=since,
    )
    return m.json()


def settle(w: Watcher, B: str, action: str = "capture") -> None:
    """Wait until everything sent to the bridge before has been handled and answered: one more command that runs
    nothing (an unknown profile / job) takes the same network thread and the same queue in the core, so its answer
    comes after theirs. `w` must watch B/response/+."""
    rid = f"settle-{uuid.uuid4().hex[:8]}"
    w.publish(
        f"{B}/cmd/{action}",
        {"request_id": rid, **({"profile": "no-such-profile"} if action == "capture" else {"job_id": "no-such-job"})},
    )
    assert response_to(w, B, rid, action=action)["status"] == "error"


def answers_to(w: Watcher, B: str, request_id: str, action: str = "capture") -> list[bytes]:
    return [m.payload for m in w.on(f"{B}/response/{action}") if m.json().get("request_id") == request_id]


def reply_props(corr: bytes, topic: str) -> Properties:
    p = Properties(PacketTypes.PUBLISH)
    p.ResponseTopic = topic
    p.CorrelationData = corr
    return p
