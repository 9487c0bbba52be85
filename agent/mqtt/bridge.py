"""MqttBridge: follows the agent's event bus and publishes; hands validated commands to ``agent.request``.

Nothing is ever done on paho's network thread, and nothing waits on it: commands are validated there and handed
over (intake.py; the core answers through a Future), bus events are published from the bus thread, and B/state,
Home Assistant discovery and the client-id check are looked after on the bridge's own thread. Config and secrets
are read from the agent's current snapshot when used; the topics and client settings of a connection are those of
the snapshot it was started with (a change to [mqtt] or device.id takes a stop() and start()).

What stays true on the broker: B/status is `online` only while connected (Last Will, and `offline` at a clean
stop); B/state says mode "stopped" after a clean stop; B/result is the last finished job, from the job store after
a restart, published again on every connect (a broker that lost its retained messages gets it back).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from agent.events import Event
from agent.mqtt.connection import (
    RECONNECT_MAX_S,
    RECONNECT_MIN_S,
    falls_back,
    first_protocol,
    loop_running,
    new_client,
    protocol_name,
)
from agent.mqtt.dedupe import Reply, RequestCache
from agent.mqtt.guard import ClientIdGuard
from agent.mqtt.intake import CommandIntake
from agent.mqtt.payloads import dumps, event_payload, first_image_url, result_payload
from agent.mqtt.retained import final_state, publish_catalogue, stored_result, sync_discovery
from agent.mqtt.topics import Topics
from agent.redact import Redactor

if TYPE_CHECKING:
    from agent.config import MqttConfig
    from agent.core import Agent

log = logging.getLogger(__name__)

STATE_MIN_INTERVAL_S = 0.25  # B/state: at most 4 publishes a second, however busy the bus is
STATE_POLL_S = 10.0  # and a change without an event still shows within this
ACK_TIMEOUT_S = 5.0  # how long the bridge thread waits for the broker to take a discovery document


class MqttBridge:
    """Connects the agent to an MQTT broker. `start()` never waits for the broker; `stop()` says offline."""

    def __init__(self, agent: Agent, *, clock: Callable[[], float] = time.time) -> None:
        self.agent = agent
        self.intake = CommandIntake(agent, self._send_response, clock=clock)
        self._redactor: tuple[object, Redactor] = (None, Redactor())  # (the secrets snapshot it masks, redactor)

        self._lock = threading.Lock()
        self._client: paho.Client | None = None
        self._session_topics: Topics | None = None  # the running connection's (its Last Will, its subscriptions)
        self._protocol: MQTTProtocolVersion | None = None  # the running connection's paho protocol constant
        self._guard = ClientIdGuard(self.client_id)
        self._connected = threading.Event()  # CONNACK received: publishing makes sense
        self._ready = threading.Event()  # and our command subscriptions are acknowledged
        self._sub_mid: int | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._fallback_pending = False
        self._announce_pending = False  # Home Assistant discovery to (re)publish or remove (bridge thread)
        self._state_dirty = False
        self._state_force = False
        self._last_state_payload: str | None = None
        self._last_state_at = 0.0
        self._last_result: dict[str, Any] | None = None
        self._fail_logged = False
        self._refused_logged: str | None = None
        self.connects = 0  # successful connections so far (tests, doctor)
        self.connect_failures = 0  # attempts that could not reach the broker (each one grows paho's backoff)

    # ------------------------------------------------------------------ config, read at use time

    @property
    def cfg(self) -> MqttConfig:
        return self.agent.config.mqtt

    @property
    def topics(self) -> Topics:
        """The running connection's topics; before start() (or after stop()) those the current config names."""
        return self._session_topics or Topics.of(self.agent.config)

    @property
    def client_id(self) -> str:
        return self.cfg.client_id or f"edge-agent-{self.agent.config.device.id}"

    @property
    def requests(self) -> RequestCache:
        return self.intake.requests

    # ------------------------------------------------------------------ service

    @property
    def connected(self) -> bool:
        """Connected and subscribed: a command published now will be seen."""
        return self._ready.is_set()

    @property
    def problem(self) -> str | None:
        """What keeps MQTT from working that the broker will not say itself (e.g. "another client uses client id
        edge-agent-booth-01 ..."), for `status` and `doctor`; None when there is none."""
        return self._guard.problem

    @property
    def alive(self) -> bool:
        """Started, and both the bridge thread and paho's network thread are running (connected or retrying)."""
        worker = self._worker
        return worker is not None and worker.is_alive() and loop_running(self._client)

    @property
    def protocol(self) -> str:
        """The MQTT version in use (or to be tried first): "5" or "3.1.1"."""
        return protocol_name(self._protocol if self._protocol is not None else first_protocol(self.cfg))

    def wait_connected(self, timeout: float) -> bool:
        """Wait until connected and subscribed (see `connected`)."""
        return self._ready.wait(timeout)

    def start(self) -> None:
        """Begin connecting in the background (the broker may be down; paho keeps retrying)."""
        if self._worker is not None:
            return
        self._stopping.clear()
        self._session_topics = Topics.of(self.agent.config)
        self._protocol = first_protocol(self.cfg)
        self._guard = ClientIdGuard(self.client_id)
        if self._last_result is None:
            self._last_result = stored_result(self.agent)
        self.agent.events.on_event(self._on_event)
        log.info(
            "MQTT: connecting to %s:%s as %s (topics under %s)",
            self.cfg.host,
            self.cfg.port,
            self.client_id,
            self.topics.base,
        )
        with self._lock:
            self._client = client = self._new_client()
        client.loop_start()
        self._worker = threading.Thread(target=self._run, name="mqtt-bridge", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Say mode "stopped" (B/state) and `offline`, disconnect cleanly (the session, and commands sent meanwhile,
        stay on the broker)."""
        if self._worker is None:
            return
        self.agent.events.remove_callback(self._on_event)
        self._stopping.set()
        self._wake.set()
        self._worker.join(timeout)
        self._worker = None
        if self._connected.is_set():
            infos = [
                self._publish(self.topics.state, final_state(self.agent), retain=True),
                self._publish(self.topics.status, b"offline", retain=True),
            ]
            deadline = time.monotonic() + timeout
            for info in infos:
                _acked(info, deadline - time.monotonic())
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            self._connected.clear()
            self._ready.clear()
            client.disconnect()
            client.loop_stop()
            log.info("MQTT: disconnected")
        self._guard.forget(self.agent.config.device.state_dir)
        self._session_topics = None

    # ------------------------------------------------------------------ client

    def _new_client(self) -> paho.Client:
        assert self._protocol is not None
        client = new_client(
            self.cfg,
            self.agent.secrets,
            client_id=self.client_id,
            protocol=self._protocol,
            will_topic=self.topics.status,
        )
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client  # the caller stores it, then calls loop_start(): callbacks check they come from it

    def _switch_to_311(self) -> None:
        """`protocol = "auto"` and the broker refused MQTT 5: reconnect, for good, as 3.1.1."""
        with self._lock:
            old = self._client
        if old is None or self._protocol != paho.MQTTv5:
            return
        log.warning("MQTT: the broker refused MQTT 5; falling back to MQTT 3.1.1")
        old.loop_stop()
        old.disconnect()
        self._protocol = paho.MQTTv311
        with self._lock:
            if self._stopping.is_set():
                return
            self._client = client = self._new_client()
        client.loop_start()

    # ------------------------------------------------------------------ paho callbacks (network thread)

    def _on_connect(self, client: paho.Client, _ud: Any, flags: Any, reason: ReasonCode, _props: Any) -> None:
        if client is not self._client or self._protocol is None:
            return
        if reason.is_failure:
            if falls_back(self.cfg, self._protocol, reason):
                self._fallback_pending = True
                self._wake.set()
                return
            if str(reason) != self._refused_logged:  # paho retries every few seconds: say it once
                self._refused_logged = str(reason)
                log.error("MQTT: %s:%s refused the connection: %s", self.cfg.host, self.cfg.port, reason)
            return
        topics = self.topics
        self._guard.connected()
        # every time: a broker that lost its state has lost our subscriptions and retained messages too
        self._sub_mid = client.subscribe(self._subscriptions(topics))[1]
        client.publish(topics.status, b"online", qos=1, retain=True)
        if self._last_result is not None:
            self._publish_result(self._last_result)
        self.connects += 1
        self._fail_logged, self._refused_logged = False, None
        self._connected.set()
        with self._lock:
            self._state_force = True
            self._announce_pending = True  # discovery: announced, or removed, from the bridge thread
        self._wake.set()
        log.info(
            "MQTT: connected to %s:%s (MQTT %s, session %s)",
            self.cfg.host,
            self.cfg.port,
            self.protocol,
            "resumed" if flags.session_present else "new",
        )

    def _subscriptions(self, topics: Topics) -> list[tuple[str, SubscribeOptions]] | list[tuple[str, int]]:
        wanted = [topics.commands, topics.fleet_commands]
        ha = [topics.ha_status, topics.selection_set] if self.cfg.homeassistant_discovery else []
        if self._protocol != paho.MQTTv5:
            return [(t, 1) for t in wanted + ha]
        # see a retained command as retained (to refuse it), and only when the subscription is new
        opts = SubscribeOptions(qos=1, retainAsPublished=True, retainHandling=1)
        return [(t, opts) for t in wanted] + [(t, SubscribeOptions(qos=1)) for t in ha]

    def _on_connect_fail(self, client: paho.Client, _ud: Any) -> None:
        self.connect_failures += 1
        if not self._fail_logged:
            self._fail_logged = True
            log.warning("MQTT: cannot reach %s:%s; retrying in the background", self.cfg.host, self.cfg.port)

    def _on_disconnect(self, client: paho.Client, _ud: Any, flags: Any, reason: ReasonCode, _props: Any) -> None:
        if client is not self._client or not self._connected.is_set():
            return
        self._connected.clear()
        self._ready.clear()
        if self._stopping.is_set():
            return
        from_server = bool(getattr(flags, "is_disconnect_packet_from_server", False))
        delay = self._guard.lost(reason.value if from_server else None, from_server)
        if delay is None:
            client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)  # type: ignore[arg-type]
            if self._guard.problem is None:
                log.warning("MQTT: connection lost (%s); reconnecting", reason)
        else:  # paho waits min_delay before the next attempt: stay away that long
            client.reconnect_delay_set(delay, delay)  # type: ignore[arg-type]
            self._wake.set()  # the bridge thread says so (once) and records it for doctor

    def _on_subscribe(self, client: paho.Client, _ud: Any, mid: int, reasons: list[ReasonCode], _props: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.error("MQTT: the broker refused a subscription (%s); check its ACL", ", ".join(map(str, reasons)))
        if client is self._client and mid == self._sub_mid:
            self._ready.set()

    def _on_message(self, client: paho.Client, _ud: Any, msg: paho.MQTTMessage) -> None:
        try:
            topics = self.topics
            if self.cfg.homeassistant_discovery and msg.topic == topics.ha_status:
                if msg.payload.strip() == b"online":  # Home Assistant (re)started: announce again
                    with self._lock:
                        self._announce_pending = True
                    self._wake.set()
                return
            if self.cfg.homeassistant_discovery and msg.topic == topics.selection_set:
                option = self.intake.selection.set(self.agent.config, bytes(msg.payload))
                if option is not None and not msg.retain:  # non-blocking: queued for paho's thread
                    self._publish(topics.selection, option, qos=1, retain=True)
                return
            action = topics.command_action(msg.topic)
            if action is not None:
                self.intake.handle(msg, action, topics)
        except Exception:  # never let one message take the bridge down
            log.exception("MQTT: failed to handle a message")

    def _send_response(self, reply: Reply, body: dict[str, Any]) -> None:
        props = None
        if self._protocol == paho.MQTTv5 and reply.correlation_data is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.CorrelationData = reply.correlation_data
        self._publish(self.topics.response(reply.action), body, qos=1, properties=props)
        if reply.response_topic:
            self._publish(reply.response_topic, body, qos=1, properties=props)

    # ------------------------------------------------------------------ events (bus thread)

    def _on_event(self, ev: Event) -> None:
        if (ev.type.startswith("job.") and ev.type != "job.progress") or ev.type in ("agent.mode", "agent.state"):
            self._mark_state_dirty()
        if ev.type == "result":  # presented before job.done: whoever reacts to job.done finds it retained already
            self._last_result = result_payload(ev)
            self._publish_result(self._last_result)
        payload = event_payload(ev)
        if payload is not None and self._connected.is_set():
            self._publish(self.topics.events, payload, qos=0 if ev.type == "job.progress" else 1)

    def _publish_result(self, result: dict[str, Any]) -> None:
        self._publish(self.topics.result, result, qos=1, retain=True)
        url = first_image_url(result)
        if url:
            self._publish(self.topics.result_url, url, qos=1, retain=True)

    # ------------------------------------------------------------------ bridge thread

    def _mark_state_dirty(self) -> None:
        with self._lock:
            self._state_dirty = True
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            woke = self._wake.wait(STATE_POLL_S)
            self._wake.clear()
            if self._stopping.is_set():
                return
            if self._fallback_pending:
                self._fallback_pending = False
                self._switch_to_311()
            try:
                self._check_client_id()
                if self._announce_pending and self._connected.is_set():
                    with self._lock:
                        self._announce_pending = False
                    sync_discovery(self.agent, self.topics, self._publish_acked)
                    publish_catalogue(self.agent, self.topics, self.intake.selection, self._publish_acked)
                self._publish_state(poll=not woke)
            except Exception:
                log.exception("MQTT: publishing state failed")

    def _check_client_id(self) -> None:
        if self._guard.settled():
            log.info("MQTT: the connection as %s has held for a while: no other client uses it now", self.client_id)
            with self._lock:
                client = self._client
            if client is not None:
                client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)  # type: ignore[arg-type]
        if self._guard.report(self.agent.config.device.state_dir):
            self._mark_state_dirty()  # B/state shows it, when the core puts `problem` in its state

    def _publish_state(self, poll: bool) -> None:
        wait = self._last_state_at + STATE_MIN_INTERVAL_S - time.monotonic()
        if wait > 0 and self._stopping.wait(wait):  # coalesce: whatever piles up meanwhile goes out as one
            return
        with self._lock:
            dirty, force = self._state_dirty, self._state_force
            self._state_dirty = False
        if not (dirty or force or poll) or not self._connected.is_set():
            return
        payload = self._dumps(self.agent.state())
        if payload == self._last_state_payload and not force:
            return
        self._publish(self.topics.state, payload, qos=1, retain=True)
        with self._lock:
            self._state_force = False
        self._last_state_payload = payload
        self._last_state_at = time.monotonic()

    # ------------------------------------------------------------------ publishing

    def _publish_acked(self, topic: str, obj: Any) -> bool:
        """Publish retained and wait until the broker has it (bridge thread only)."""
        return _acked(self._publish(topic, obj, retain=True), ACK_TIMEOUT_S)

    def _dumps(self, obj: Any) -> str:
        secrets = self.agent.secrets
        snapshot, redactor = self._redactor
        if snapshot is not secrets:  # a new snapshot (reload): its secrets are the ones to mask
            redactor = Redactor(secrets.all_values())
            self._redactor = (secrets, redactor)
        return dumps(obj, redactor)

    def _publish(
        self, topic: str, obj: Any, *, qos: int = 1, retain: bool = False, properties: Properties | None = None
    ) -> paho.MQTTMessageInfo | None:
        """Publish JSON (a str as it is; bytes untouched: b"" clears a retained message), secrets masked."""
        client = self._client
        if client is None:
            return None
        try:
            return client.publish(
                topic,
                obj if isinstance(obj, bytes) else self._dumps(obj).encode("utf-8"),
                qos=qos,
                retain=retain,
                properties=properties if self._protocol == paho.MQTTv5 else None,
            )
        except (ValueError, TypeError) as e:  # e.g. a Response Topic paho refuses
            log.warning("MQTT: cannot publish to %r: %s", topic[:200], e)
            return None


def _acked(info: paho.MQTTMessageInfo | None, timeout: float) -> bool:
    """Whether the broker took a QoS 1 message within `timeout` (bridge thread only: it waits)."""
    if info is None:
        return False
    try:
        info.wait_for_publish(max(0.0, timeout))
    except (RuntimeError, ValueError):  # not queued, or the connection went meanwhile
        return False
    return info.is_published()
