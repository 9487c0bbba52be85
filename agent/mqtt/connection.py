"""The one place that builds a paho client from ``[mqtt]`` and the secrets: protocol (and the "auto" fallback to
3.1.1), TLS, username/password, Last Will, reconnect delays, TCP_NODELAY, paho's logger. The bridge and
``edge-agent doctor`` both use it, so what doctor says about the broker is what the daemon will meet."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

if TYPE_CHECKING:
    from agent.config import MqttConfig, Secrets

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 24 * 3600  # the broker keeps our subscriptions and queued QoS 1 commands this long
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 3  # a restarted broker sees us again within a few seconds
RETAINED_WAIT_S = 0.5  # a retained message follows the SUBACK at once; none within this: there is none
UNSUPPORTED_PROTOCOL = 132  # CONNACK reason; paho maps a 3.1.1 broker's "unacceptable protocol version" to it


def no_delay(_client: paho.Client, _ud: Any, sock: Any) -> None:
    """MQTT is small packets both ways: without this, Nagle + delayed ACK add ~40 ms to every response."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass


class _QuietDisconnect(logging.Filter):
    """paho 2.2 logs "Client is not connected ... MQTT_CS_DISCONNECTED" as an ERROR after every deliberate
    disconnect (its loop runs once more after the socket closed). That is not an error: log it as DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and "Client is not connected" in str(record.msg):
            # also while reconnecting to a broker that is down: the bridge says that once, in its own words
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


paho_log = logging.getLogger("agent.mqtt.paho")
paho_log.addFilter(_QuietDisconnect())


def first_protocol(cfg: MqttConfig) -> MQTTProtocolVersion:
    """The protocol to try first: MQTT 5 unless `protocol = "3.1.1"` ("auto" starts with 5)."""
    return paho.MQTTv311 if cfg.protocol == "3.1.1" else paho.MQTTv5


def protocol_name(protocol: MQTTProtocolVersion) -> str:
    return "5" if protocol == paho.MQTTv5 else "3.1.1"


def falls_back(cfg: MqttConfig, protocol: MQTTProtocolVersion, reason: ReasonCode) -> bool:
    """`protocol = "auto"` and the broker refused MQTT 5 as unsupported: the next try is 3.1.1, for good."""
    return (
        cfg.protocol == "auto"
        and protocol == paho.MQTTv5
        and reason.is_failure
        and reason.value == (UNSUPPORTED_PROTOCOL)
    )


def new_client(
    cfg: MqttConfig,
    secrets: Secrets,
    *,
    client_id: str,
    protocol: MQTTProtocolVersion,
    will_topic: str | None = None,
    persistent: bool = True,
    keepalive: int | None = None,
) -> paho.Client:
    """A paho client set up from `cfg` and `secrets`, connect_async() called: set callbacks, then loop_start().

    `persistent`: a session the broker keeps (SESSION_EXPIRY_S) with our subscriptions and the QoS 1 commands sent
    while we are away; a one-off check (doctor) leaves nothing behind. `will_topic`: "offline" there, retained, when
    the connection dies without a goodbye."""
    v5 = protocol == paho.MQTTv5
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if v5 else not persistent,  # v5 says it with clean_start below
    )
    client.suppress_exceptions = True  # a bug in a callback must never end the network thread
    client.enable_logger(paho_log)
    client.on_socket_open = no_delay
    client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)  # type: ignore[arg-type]
    if will_topic is not None:
        client.will_set(will_topic, b"offline", qos=1, retain=True)
    if cfg.username:
        pw = secrets.mqtt_password
        client.username_pw_set(cfg.username, pw.get_secret_value() if pw is not None else None)
    elif secrets.mqtt_password is not None:
        log.warning("MQTT: a password is configured without mqtt.username; it is not sent")
    if cfg.tls:
        client.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file else None)
    props = None
    if v5 and persistent:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
    client.connect_async(
        cfg.host,
        cfg.port,
        keepalive=keepalive or cfg.keepalive_s,
        clean_start=(not persistent) if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
        properties=props,
    )
    return client


def loop_running(client: paho.Client | None) -> bool:
    """Whether paho's network thread (loop_start) is alive. paho 2.x has no public accessor: it keeps the thread
    in `_thread`."""
    thread = getattr(client, "_thread", None)
    return isinstance(thread, threading.Thread) and thread.is_alive()


@dataclass
class Probe:
    """One connection attempt's outcome (doctor)."""

    connected: bool
    protocol: str  # "5" | "3.1.1": the version last tried
    error: str | None = None  # why not: the broker's CONNACK reason, or that it cannot be reached
    answered: bool = True  # False: nothing within the timeout
    retained: bytes | None = None  # the retained message on `read_retained`, if asked and there is one


def probe(
    cfg: MqttConfig, secrets: Secrets, *, client_id: str, timeout: float, read_retained: str | None = None
) -> Probe:
    """Connect once (a clean session, no Last Will) and disconnect, with the bridge's client setup and its fallback
    rule; `read_retained`: also read that topic's retained message (doctor: B/status). Raises OSError / ValueError
    when the client cannot even be set up (e.g. an unreadable ca_file)."""
    deadline = time.monotonic() + timeout
    protocol = first_protocol(cfg)
    while True:
        left = max(0.0, deadline - time.monotonic())
        result, reason = _probe_once(cfg, secrets, client_id, protocol, left, read_retained)
        if reason is not None and falls_back(cfg, protocol, reason):
            protocol = paho.MQTTv311
            continue
        return result


def _probe_once(
    cfg: MqttConfig,
    secrets: Secrets,
    client_id: str,
    protocol: MQTTProtocolVersion,
    timeout: float,
    read_retained: str | None = None,
) -> tuple[Probe, ReasonCode | None]:
    done, subscribed, message = threading.Event(), threading.Event(), threading.Event()
    got: dict[str, Any] = {}

    def on_connect(c: paho.Client, _ud: Any, _flags: Any, reason: ReasonCode, _props: Any) -> None:
        got["reason"] = reason
        if read_retained and not reason.is_failure:
            c.subscribe(read_retained, qos=0)
        done.set()

    def on_message(_c: paho.Client, _ud: Any, msg: paho.MQTTMessage) -> None:
        if msg.retain:
            got["retained"] = bytes(msg.payload)
            message.set()

    def on_connect_fail(_c: paho.Client, _ud: Any) -> None:
        got["unreachable"] = True
        done.set()

    name = protocol_name(protocol)
    client = new_client(cfg, secrets, client_id=client_id, protocol=protocol, persistent=False, keepalive=10)
    client.on_connect = on_connect
    client.on_connect_fail = on_connect_fail
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = on_message
    deadline = time.monotonic() + timeout
    try:
        client.loop_start()
        if not done.wait(timeout):
            return Probe(False, name, answered=False), None
        reason: ReasonCode | None = got.get("reason")
        if reason is None:
            return Probe(
                False, name, "connection refused or unreachable: is the broker running, and is the port right?"
            ), None
        if reason.is_failure:
            return Probe(False, name, str(reason)), reason
        if read_retained and subscribed.wait(max(0.0, deadline - time.monotonic())):
            message.wait(min(RETAINED_WAIT_S, max(0.0, deadline - time.monotonic())))  # sent right after SUBACK
        return Probe(True, name, retained=got.get("retained")), reason
    finally:
        client.disconnect()
        client.loop_stop()
