"""The MQTT bridge: the booth as a product surface on a broker (availability, retained state, commands).

``MqttBridge(agent)`` follows the agent's event bus and publishes; commands arriving on the broker are validated
here and handed to ``agent.request`` - nothing is ever done on paho's network thread, and nothing waits on it.

Topics (B = ``<topic_prefix>/<device_id>``)::

    B/status        retained  online | offline (Last Will)
    B/state         retained  agent.state(), republished on every connect and on change (coalesced)
    B/events                  job events  {"type","job_id","profile","progress"?,"outputs"?,"error"?,"request_id"?}
    B/result        retained  the last finished job {"job_id","profile","outputs":[{"type","url","path"}]}
    B/result/url    retained  the URL of its first image (Home Assistant's image entity reads this)
    B/cmd/<action>, <topic_prefix>/fleet/cmd/<action>      capture | cancel | retry | print
    B/response/<action>       {"request_id","status":"ok"|"error","data"?,"error"?}; also on an MQTT 5
                              Response Topic, with the Correlation Data echoed back

Command payloads (JSON objects; unknown keys are refused so a typo never silently means "the default")::

    capture: {"request_id", "profile"?, "params"?, "ttl_s"?, "ts"?}
    cancel | retry | print: {"request_id", "job_id"?, "ttl_s"?, "ts"?}   (no job_id: the latest job, like a button)

``ts`` is when the command was sent (unix seconds, the sender's clock). A command with ``ttl_s`` whose age
``now - ts`` exceeds ``ttl_s`` is answered ``expired`` and nothing runs. Without ``ts`` the device cannot know how
long a command waited in the broker (a persistent session keeps commands for a day), so senders that care set
``ts`` - or the MQTT 5 Message Expiry Interval, which the broker itself honours.

A ``request_id`` that reached the core is remembered (the last 1000, for an hour) with its response: a repeat is
answered with the same response and never runs again. Retained commands are refused (MQTT 5 subscriptions use
Retain As Published so a retained command is recognisable; a 3.1.1 broker clears the flag on live delivery, so
there only retained commands replayed on subscribe are caught).

Home Assistant (``homeassistant_discovery = true``): one retained device-discovery document on
``<discovery_prefix>/device/<device_id>/config`` - a button per profile, Mode / Queue depth / Last error sensors over
B/state, an image entity on B/result/url, availability on B/status - re-sent when ``<discovery_prefix>/status``
says ``online``. The buttons publish to the ordinary B/cmd/capture through a ``command_template`` that HA renders
on each press into ``{"request_id":"ha-<now>","profile":...,"ts":<now>,"ttl_s":60}``: no special topic, and
dedupe and expiry apply to HA exactly as to any other sender.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from collections import OrderedDict
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from agent import __version__
from agent.commands import ACTIONS, Command, CommandError
from agent.events import Event

if TYPE_CHECKING:
    from agent.config import Config
    from agent.core import Agent

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 24 * 3600  # the broker keeps our subscriptions and queued QoS 1 commands this long
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 3  # a restarted broker sees us again within a few seconds
STATE_MIN_INTERVAL_S = 0.25  # B/state: at most 4 publishes a second, however busy the bus is
STATE_POLL_S = 10.0  # and a change without an event still shows within this
MAX_PAYLOAD = 64 * 1024
REQUEST_ID_MAX = 128
DEDUPE_SIZE = 1000
DEDUPE_TTL_S = 3600.0
HA_COMMAND_TTL_S = 60  # a Home Assistant press older than this (booth offline) is not a photo anyone wants
UNSUPPORTED_PROTOCOL = 132  # CONNACK reason; paho maps a 3.1.1 broker's "unacceptable protocol version" to it

_CAPTURE_KEYS = frozenset({"request_id", "profile", "params", "ttl_s", "ts"})
_JOB_KEYS = frozenset({"request_id", "job_id", "ttl_s", "ts"})


# --------------------------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class Topics:
    prefix: str
    device_id: str
    discovery_prefix: str = "homeassistant"

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device_id}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def result(self) -> str:
        return f"{self.base}/result"

    @property
    def result_url(self) -> str:
        return f"{self.base}/result/url"

    @property
    def commands(self) -> str:
        return f"{self.base}/cmd/+"

    @property
    def fleet_commands(self) -> str:
        return f"{self.prefix}/fleet/cmd/+"

    @property
    def ha_status(self) -> str:
        return f"{self.discovery_prefix}/status"

    @property
    def ha_config(self) -> str:
        return f"{self.discovery_prefix}/device/{self.device_id}/config"

    def command(self, action: str) -> str:
        return f"{self.base}/cmd/{action}"

    def response(self, action: str) -> str:
        return f"{self.base}/response/{action}"

    def command_action(self, topic: str) -> str | None:
        """`capture` for B/cmd/capture or <prefix>/fleet/cmd/capture; None for anything else."""
        for head in (f"{self.base}/cmd/", f"{self.prefix}/fleet/cmd/"):
            if topic.startswith(head) and "/" not in topic[len(head):]:
                return topic[len(head):]
        return None

    def response_topic_allowed(self, topic: str) -> bool:
        """An MQTT 5 Response Topic we publish on for the requester. Never a wildcard or `$` topic, nothing in our
        own namespace but B/response/..., nothing under the discovery prefix: a sender must not be able to make the
        agent publish state, results or Home Assistant config with its credentials."""
        if not topic or any(c in topic for c in "+#\0") or topic.startswith("$"):
            return False
        if topic.startswith(f"{self.base}/response/"):
            return True
        return not (topic == self.prefix or topic.startswith(f"{self.prefix}/")
                    or topic.startswith(f"{self.discovery_prefix}/"))


# --------------------------------------------------------------------------------------------- payloads


class Rejected(Exception):
    """A command the bridge answers with an error itself; nothing reached the core."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass
class ParsedCommand:
    request_id: str
    command: Command
    ttl_s: float | None = None
    ts: float | None = None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _request_id(v: Any) -> str | None:
    return v if isinstance(v, str) and 1 <= len(v) <= REQUEST_ID_MAX else None


def peek_request_id(payload: bytes) -> str | None:
    """The request_id of a payload if it has a valid one (to address an error response), else None."""
    try:
        obj = json.loads(payload.decode("utf-8"), parse_constant=_no_constants) if len(payload) <= MAX_PAYLOAD else None
    except (ValueError, RecursionError):
        return None
    return _request_id(obj.get("request_id")) if isinstance(obj, dict) else None


def parse_command(action: str, payload: bytes) -> ParsedCommand:
    """Validate one command payload; raises Rejected("bad_request", ...) for anything that is not a command."""
    if action not in ACTIONS:
        rid = peek_request_id(payload)
        raise Rejected("bad_request", f"unknown action {action[:64]!r}; expected one of {', '.join(ACTIONS)}", rid)
    if len(payload) > MAX_PAYLOAD:
        raise Rejected("bad_request", f"payload larger than {MAX_PAYLOAD} bytes")
    try:
        obj = json.loads(payload.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise Rejected("bad_request", "payload is not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise Rejected("bad_request", "payload is not valid JSON") from None
    if not isinstance(obj, dict):
        raise Rejected("bad_request", f"payload must be a JSON object, got {type(obj).__name__}")
    if "request_id" not in obj:
        raise Rejected("bad_request", "request_id is required")
    rid = _request_id(obj["request_id"])
    if rid is None:
        raise Rejected("bad_request", f"request_id must be a string of 1-{REQUEST_ID_MAX} characters")

    allowed = _CAPTURE_KEYS if action == "capture" else _JOB_KEYS
    unknown = sorted(str(k) for k in obj if k not in allowed)
    if unknown:
        raise Rejected(
            "bad_request", f"unknown key(s) {', '.join(repr(k[:64]) for k in unknown[:5])} for {action}; "
            f"allowed: {', '.join(sorted(allowed))}", rid,
        )
    ttl_s = obj.get("ttl_s")
    if ttl_s is not None and not (_is_number(ttl_s) and ttl_s > 0):
        raise Rejected("bad_request", "ttl_s must be a positive number of seconds", rid)
    ts = obj.get("ts")
    if ts is not None and not (_is_number(ts) and ts >= 0):
        raise Rejected("bad_request", "ts must be unix seconds (a non-negative number)", rid)
    if ts is not None and ts > 1e11:
        raise Rejected("bad_request", "ts must be unix seconds, not milliseconds", rid)

    if action == "capture":
        profile = obj.get("profile")
        if profile is not None and not (isinstance(profile, str) and 1 <= len(profile) <= 128):
            raise Rejected("bad_request", "profile must be a profile name (string)", rid)
        params = obj.get("params")
        if params is not None and not isinstance(params, dict):
            raise Rejected("bad_request", "params must be a JSON object", rid)
        cmd = Command(action="capture", source="mqtt", profile=profile, params=dict(params or {}), request_id=rid)
    else:
        job_id = obj.get("job_id")
        if job_id is not None and not (isinstance(job_id, str) and 1 <= len(job_id) <= 128):
            raise Rejected("bad_request", "job_id must be a job id (string)", rid)
        cmd = Command(action=action, source="mqtt", job_id=job_id, request_id=rid)  # type: ignore[arg-type]
    return ParsedCommand(rid, cmd, float(ttl_s) if ttl_s is not None else None, float(ts) if ts is not None else None)


def check_age(parsed: ParsedCommand, now: float) -> None:
    """Raises Rejected("expired") for a command older than its ttl_s (measured from its ts)."""
    if parsed.ttl_s is None or parsed.ts is None:
        return
    age = now - parsed.ts
    if age > parsed.ttl_s:
        raise Rejected("expired", f"command is {age:.1f}s old, older than its ttl_s={parsed.ttl_s:g}", parsed.request_id)


def response_body(request_id: str | None, *, data: Any = None, error: dict[str, str] | None = None) -> dict:
    if error is not None:
        return {"request_id": request_id, "status": "error", "error": error}
    body: dict[str, Any] = {"request_id": request_id, "status": "ok"}
    if data is not None:
        body["data"] = data
    return body


def event_payload(ev: Event) -> dict[str, Any] | None:
    """What B/events carries for a bus event (None: not published there)."""
    d = ev.data
    if ev.type.startswith("job."):
        out: dict[str, Any] = {"type": ev.type, "job_id": d.get("job_id"), "profile": d.get("profile")}
        for k in ("state", "progress", "outputs", "error", "request_id", "source"):
            if d.get(k) is not None:
                out[k] = d[k]
        return out
    if ev.type in ("capture.refused", "alarm"):
        return {"type": ev.type, "code": d.get("code"), "message": d.get("message")}
    return None


def result_payload(ev: Event) -> dict[str, Any]:
    outputs = [
        {"type": o.get("type"), "url": o.get("url"), "path": o.get("path")}
        for o in (ev.data.get("outputs") or [])
        if isinstance(o, dict)
    ]
    return {"job_id": ev.data.get("job_id"), "profile": ev.data.get("profile"), "outputs": outputs}


def _first_image_url(result: dict[str, Any]) -> str | None:
    for o in result["outputs"]:
        if o.get("type") == "image" and o.get("url"):
            return o["url"]
    return None


# --------------------------------------------------------------------------------------------- Home Assistant


def ha_button_template(profile: str) -> str:
    """HA renders this on every press: a fresh request_id and ts, so dedupe and ttl work as for any sender."""
    return (
        "{% set t = now().timestamp() %}"
        '{"request_id":"ha-{{ t }}","profile":"' + profile + '","ts":{{ t }},"ttl_s":' + str(HA_COMMAND_TTL_S) + "}"
    )


def ha_discovery(config: "Config", topics: Topics) -> dict[str, Any]:
    """One Home Assistant device-discovery document (`dev`, `o`, `cmps`) for the whole booth."""
    dev_id = config.device.id
    uid = f"edge_agent_{dev_id}"
    cmps: dict[str, dict[str, Any]] = {}
    for p in config.profiles:
        cmps[f"capture_{p.name}"] = {
            "p": "button",
            "name": f"Capture {p.name}",
            "unique_id": f"{uid}_capture_{p.name}",
            "icon": "mdi:camera",
            "command_topic": topics.command("capture"),
            "command_template": ha_button_template(p.name),
            "qos": 1,
            "retain": False,
        }
    cmps["mode"] = {
        "p": "sensor",
        "name": "Mode",
        "unique_id": f"{uid}_mode",
        "icon": "mdi:state-machine",
        "state_topic": topics.state,
        "value_template": "{{ value_json.mode }}",
    }
    cmps["queue"] = {
        "p": "sensor",
        "name": "Queue depth",
        "unique_id": f"{uid}_queue",
        "icon": "mdi:tray-full",
        "state_topic": topics.state,
        "state_class": "measurement",
        "unit_of_measurement": "jobs",
        "value_template": "{% set q = value_json.queue %}"
        "{{ q.captured|default(0) + q.submitting|default(0) + q.submitted|default(0) + q.downloading|default(0) }}",
    }
    cmps["last_error"] = {
        "p": "sensor",
        "name": "Last error",
        "unique_id": f"{uid}_last_error",
        "icon": "mdi:alert-circle-outline",
        "entity_category": "diagnostic",
        "state_topic": topics.state,
        "value_template": "{{ (value_json.last_error or 'none')[:255] }}",
    }
    cmps["result"] = {
        "p": "image",
        "name": "Last result",
        "unique_id": f"{uid}_result",
        "url_topic": topics.result_url,
    }
    return {
        "dev": {
            "ids": [uid],
            "name": f"Photo booth {dev_id}",
            "mf": "edge-agent",
            "mdl": "AI photo booth",
            "sw": __version__,
        },
        "o": {"name": "edge-agent", "sw": __version__},
        "cmps": cmps,
        "availability_topic": topics.status,
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
    }


# --------------------------------------------------------------------------------------------- dedupe


@dataclass
class _Reply:
    """Where one received command is answered."""

    action: str
    response_topic: str | None = None
    correlation_data: bytes | None = None


@dataclass
class _Entry:
    created: float
    response: dict | None = None  # None while the core has not answered yet
    waiters: list[_Reply] = field(default_factory=list)


class RequestCache:
    """The last `size` request_ids (for `ttl_s`) with their responses: a repeat is answered, never re-run."""

    def __init__(self, size: int = DEDUPE_SIZE, ttl_s: float = DEDUPE_TTL_S, clock: Callable[[], float] = time.monotonic):
        self.size = size
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: "OrderedDict[str, _Entry]" = OrderedDict()

    def lookup(self, request_id: str, reply: _Reply) -> _Entry | None:
        """The entry of a request_id seen before (a pending one gets `reply` added to its waiters), else None."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(request_id)
            if entry is None:
                return None
            if entry.response is not None and now - entry.created > self.ttl_s:
                del self._entries[request_id]
                return None
            self._entries.move_to_end(request_id)
            if entry.response is None:
                entry.waiters.append(reply)
            return entry

    def add(self, request_id: str, reply: _Reply) -> _Entry:
        with self._lock:
            entry = self._entries[request_id] = _Entry(created=self._clock(), waiters=[reply])
            self._entries.move_to_end(request_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            return entry

    def resolve(self, entry: _Entry, response: dict) -> list[_Reply]:
        with self._lock:
            entry.response = response
            waiters, entry.waiters = entry.waiters, []
        return waiters

    def __len__(self) -> int:
        return len(self._entries)


# --------------------------------------------------------------------------------------------- the bridge


def _no_delay(_client: paho.Client, _ud: Any, sock: Any) -> None:
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


_paho_log = logging.getLogger(f"{__name__}.paho")
_paho_log.addFilter(_QuietDisconnect())


class MqttBridge:
    """Connects the agent to an MQTT broker. `start()` never waits for the broker; `stop()` says offline."""

    def __init__(self, agent: "Agent", *, clock: Callable[[], float] = time.time) -> None:
        self.agent = agent
        self.config = agent.config
        self.cfg = agent.config.mqtt
        self.topics = Topics(self.cfg.topic_prefix, self.config.device.id, self.cfg.discovery_prefix)
        self.client_id = self.cfg.client_id or f"edge-agent-{self.config.device.id}"
        self._clock = clock
        self._secrets = self._secret_forms(agent.secrets.all_values())
        self.requests = RequestCache()

        self._lock = threading.Lock()
        self._client: paho.Client | None = None
        self._protocol = paho.MQTTv311 if self.cfg.protocol == "3.1.1" else paho.MQTTv5
        self._connected = threading.Event()  # CONNACK received: publishing makes sense
        self._ready = threading.Event()  # and our command subscriptions are acknowledged
        self._sub_mid: int | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._fallback_pending = False
        self._state_dirty = False
        self._state_force = False
        self._last_state_payload: str | None = None
        self._last_state_at = 0.0
        self._last_result: dict[str, Any] | None = None
        self._fail_logged = False
        self._refused_logged: str | None = None
        self.connects = 0  # successful connections so far (tests, doctor)

    # ------------------------------------------------------------------ public

    @property
    def connected(self) -> bool:
        """Connected and subscribed: a command published now will be seen."""
        return self._ready.is_set()

    @property
    def protocol(self) -> str:
        """The MQTT version in use: "5" or "3.1.1"."""
        return "5" if self._protocol == paho.MQTTv5 else "3.1.1"

    def wait_connected(self, timeout: float) -> bool:
        """Wait until connected and subscribed (see `connected`)."""
        return self._ready.wait(timeout)

    def start(self) -> None:
        """Begin connecting in the background (the broker may be down; paho keeps retrying)."""
        if self._worker is not None:
            return
        self._stopping.clear()
        self.agent.events.on_event(self._on_event)
        log.info(
            "MQTT: connecting to %s:%s as %s (topics under %s)", self.cfg.host, self.cfg.port, self.client_id,
            self.topics.base,
        )
        with self._lock:
            self._client = client = self._new_client()
        client.loop_start()
        self._worker = threading.Thread(target=self._run, name="mqtt-bridge", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Publish `offline`, disconnect cleanly (the session, and commands sent meanwhile, stay on the broker)."""
        if self._worker is None:
            return
        self.agent.events.remove_callback(self._on_event)
        self._stopping.set()
        self._wake.set()
        self._worker.join(timeout)
        self._worker = None
        with self._lock:
            client, self._client = self._client, None
        if client is None:
            return
        if self._connected.is_set():
            info = client.publish(self.topics.status, b"offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self._connected.clear()
        self._ready.clear()
        client.disconnect()
        client.loop_stop()
        log.info("MQTT: disconnected")

    # ------------------------------------------------------------------ client

    def _new_client(self) -> paho.Client:
        v5 = self._protocol == paho.MQTTv5
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=self._protocol,
            clean_session=None if v5 else False,  # 3.1.1: a persistent session
        )
        client.suppress_exceptions = True  # a bug in a callback must never end the network thread
        client.enable_logger(_paho_log)
        client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)  # type: ignore[arg-type]
        client.will_set(self.topics.status, b"offline", qos=1, retain=True)
        if self.cfg.username:
            pw = self.agent.secrets.mqtt_password
            client.username_pw_set(self.cfg.username, pw.get_secret_value() if pw is not None else None)
        elif self.agent.secrets.mqtt_password is not None:
            log.warning("MQTT: a password is configured without mqtt.username; it is not sent")
        if self.cfg.tls:
            client.tls_set(ca_certs=str(self.cfg.ca_file) if self.cfg.ca_file else None)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = _no_delay
        props = None
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
        client.connect_async(
            self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s,
            clean_start=False if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY, properties=props,
        )
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
        if client is not self._client:
            return
        if reason.is_failure:
            if self.cfg.protocol == "auto" and self._protocol == paho.MQTTv5 and reason.value == UNSUPPORTED_PROTOCOL:
                self._fallback_pending = True
                self._wake.set()
                return
            if str(reason) != self._refused_logged:  # paho retries every few seconds: say it once
                self._refused_logged = str(reason)
                log.error("MQTT: %s:%s refused the connection: %s", self.cfg.host, self.cfg.port, reason)
            return
        v5 = self._protocol == paho.MQTTv5
        # v5: see a retained command as retained (to refuse it), and only when the subscription is new
        opts = SubscribeOptions(qos=1, retainAsPublished=True, retainHandling=1) if v5 else 1
        subs = [(self.topics.commands, opts), (self.topics.fleet_commands, opts)]
        if self.cfg.homeassistant_discovery:
            subs.append((self.topics.ha_status, SubscribeOptions(qos=1) if v5 else 1))
        # every time: a broker that lost its state has lost our subscriptions too
        self._sub_mid = client.subscribe(subs)[1]
        client.publish(self.topics.status, b"online", qos=1, retain=True)
        if self._last_result is not None:
            self._publish_result(self._last_result)
        if self.cfg.homeassistant_discovery:
            self._announce()
        self.connects += 1
        self._fail_logged, self._refused_logged = False, None
        self._connected.set()
        with self._lock:
            self._state_force = True
        self._wake.set()
        log.info(
            "MQTT: connected to %s:%s (MQTT %s, session %s)", self.cfg.host, self.cfg.port, self.protocol,
            "resumed" if flags.session_present else "new",
        )

    def _on_connect_fail(self, client: paho.Client, _ud: Any) -> None:
        if not self._fail_logged:
            self._fail_logged = True
            log.warning("MQTT: cannot reach %s:%s; retrying in the background", self.cfg.host, self.cfg.port)

    def _on_disconnect(self, client: paho.Client, _ud: Any, _flags: Any, reason: ReasonCode, _props: Any) -> None:
        if client is not self._client or not self._connected.is_set():
            return
        self._connected.clear()
        self._ready.clear()
        if not self._stopping.is_set():
            log.warning("MQTT: connection lost (%s); reconnecting", reason)

    def _on_subscribe(self, client: paho.Client, _ud: Any, mid: int, reasons: list[ReasonCode], _props: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.error("MQTT: the broker refused a subscription (%s); check its ACL", ", ".join(map(str, reasons)))
        if client is self._client and mid == self._sub_mid:
            self._ready.set()

    def _on_message(self, client: paho.Client, _ud: Any, msg: paho.MQTTMessage) -> None:
        try:
            self._handle_message(msg)
        except Exception:  # never let one message take the bridge down
            log.exception("MQTT: failed to handle a message")

    # ------------------------------------------------------------------ commands

    def _handle_message(self, msg: paho.MQTTMessage) -> None:
        topic = msg.topic
        if self.cfg.homeassistant_discovery and topic == self.topics.ha_status:
            if msg.payload.strip() == b"online":
                self._announce()
            return
        action = self.topics.command_action(topic)
        if action is None:
            return
        reply = _Reply(action)
        props = getattr(msg, "properties", None)
        if props is not None:
            rt = getattr(props, "ResponseTopic", None)
            if isinstance(rt, str) and self.topics.response_topic_allowed(rt):
                reply.response_topic = rt
                cd = getattr(props, "CorrelationData", None)
                reply.correlation_data = bytes(cd) if cd is not None else None
        payload = bytes(msg.payload)
        try:
            if msg.retain:
                raise Rejected(
                    "bad_request", f"commands must not be retained; clear the retained message on {topic}",
                    peek_request_id(payload),
                )
            parsed = parse_command(action, payload)
        except Rejected as r:
            self._send_response(reply, response_body(r.request_id, error={"code": r.code, "message": r.message}))
            return

        # Only this (network) thread adds entries, so lookup-then-add cannot race with another message.
        key = f"{action}\0{parsed.request_id}"  # a cancel reusing a capture's id is its own command
        seen = self.requests.lookup(key, reply)
        if seen is not None:
            if seen.response is not None:
                log.info("MQTT: %s %s is a repeat; answering again", action, parsed.request_id)
                self._send_response(reply, seen.response)
            return  # still pending: this reply is sent when the core answers
        try:
            check_age(parsed, self._clock())
        except Rejected as r:  # not remembered: nothing ran
            self._send_response(reply, response_body(r.request_id, error={"code": r.code, "message": r.message}))
            return
        entry = self.requests.add(key, reply)
        log.info("MQTT: %s request %s", action, parsed.request_id)
        try:
            fut = self.agent.request(parsed.command)
        except Exception as e:  # request() should return a future; be safe if it raises instead
            fut = Future()
            fut.set_exception(e)
        fut.add_done_callback(lambda f, e=entry, rid=parsed.request_id: self._finish(e, rid, f))

    def _finish(self, entry: _Entry, request_id: str, fut: Future) -> None:
        try:
            body = response_body(request_id, data=fut.result())
        except CommandError as e:
            body = response_body(request_id, error=e.as_dict())
        except CancelledError:
            body = response_body(request_id, error={"code": "unavailable", "message": "the agent is shutting down"})
        except Exception:
            log.exception("MQTT: request %s failed inside the agent", request_id)
            body = response_body(request_id, error={"code": "internal", "message": "internal error"})
        for reply in self.requests.resolve(entry, body):
            self._send_response(reply, body)

    def _send_response(self, reply: _Reply, body: dict) -> None:
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
        if ev.type == "job.done":  # the retained result first: whoever reacts to job.done finds it there
            self._last_result = result_payload(ev)
            self._publish_result(self._last_result)
        payload = event_payload(ev)
        if payload is not None and self._connected.is_set():
            self._publish(self.topics.events, payload, qos=0 if ev.type == "job.progress" else 1)

    def _publish_result(self, result: dict[str, Any]) -> None:
        self._publish(self.topics.result, result, qos=1, retain=True)
        url = _first_image_url(result)
        if url:
            self._publish(self.topics.result_url, url, qos=1, retain=True)

    def _announce(self) -> None:
        self._publish(self.topics.ha_config, ha_discovery(self.config, self.topics), qos=1, retain=True)

    # ------------------------------------------------------------------ state (bridge thread)

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
                self._publish_state(poll=not woke)
            except Exception:
                log.exception("MQTT: publishing state failed")

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

    @staticmethod
    def _secret_forms(values: list[str]) -> list[str]:
        forms: set[str] = set()
        for v in values:
            if len(v) >= 3:
                forms.add(v)
                forms.add(json.dumps(v)[1:-1])  # as it would appear inside a JSON string
        return sorted(forms, key=len, reverse=True)

    def _dumps(self, obj: Any) -> str:
        text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"), sort_keys=True, default=str)
        for s in self._secrets:  # defence in depth: nothing that looks like a secret ever leaves the device
            if s in text:
                text = text.replace(s, "***")
        return text

    def _publish(
        self, topic: str, obj: Any, *, qos: int = 1, retain: bool = False, properties: Properties | None = None
    ) -> None:
        client = self._client
        if client is None:
            return
        try:
            client.publish(
                topic, self._dumps(obj).encode("utf-8"), qos=qos, retain=retain,
                properties=properties if self._protocol == paho.MQTTv5 else None,
            )
        except (ValueError, TypeError) as e:  # e.g. a Response Topic paho refuses
            log.warning("MQTT: cannot publish to %r: %s", topic[:200], e)
