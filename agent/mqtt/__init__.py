"""The MQTT bridge: the booth as a product surface on a broker (availability, retained state, commands).

Topics (B = ``<topic_prefix>/<device_id>``)::

    B/status        retained  online | offline (Last Will)
    B/state         retained  agent.state(), republished on every connect and on change (coalesced)
    B/events                  job events  {"type","job_id","profile","progress"?,"outputs"?,"error"?,"request_id"?}
    B/result        retained  the last finished job {"job_id","profile","outputs":[{"type","url","path"}]}
    B/result/url    retained  the URL of its first image (Home Assistant's image entity reads this)
    B/cmd/<action>, <topic_prefix>/fleet/cmd/<action>      capture | cancel | retry | print
    B/response/<action>       {"request_id","status":"ok"|"error","data"?,"error"?}; also on an MQTT 5
                              Response Topic, with the Correlation Data echoed back
    B/state after a clean stop: mode "stopped"; B/status "offline" (and the Last Will when the agent dies)

A command with ``ttl_s`` whose age ``now - ts`` exceeds ``ttl_s`` is answered ``expired`` and nothing runs. A
``request_id`` that reached the core is remembered with its response: a repeat is answered with the same response
and never runs again. Retained commands are refused (MQTT 5 subscriptions use Retain As Published so a retained
command is recognisable; a 3.1.1 broker clears the flag on live delivery, so there only retained commands replayed
on subscribe are caught).

An MQTT 5 Response Topic must be below ``[mqtt] response_topic_prefix`` (default ``<topic_prefix>/replies``);
a command naming any other is refused with an error on B/response/<action> and nothing runs.

Modules: ``topics`` (the topic tree, allowed Response Topics), ``commands`` (payload validation, expiry),
``intake`` (what arrives on B/cmd/<action>), ``payloads`` (what is published, redacted), ``homeassistant`` (the
discovery document, and removing what is gone), ``dedupe`` (RequestCache), ``guard`` (two clients with one client
id), ``connection`` (paho client setup, shared with ``edge-agent doctor``), ``bridge`` (MqttBridge).
"""

from __future__ import annotations

from agent.mqtt.bridge import MqttBridge
from agent.mqtt.commands import MAX_PAYLOAD, ParsedCommand, Rejected, check_age, parse_command, peek_request_id
from agent.mqtt.connection import Probe, new_client, no_delay, probe
from agent.mqtt.dedupe import Reply, RequestCache
from agent.mqtt.homeassistant import ha_button_template, ha_discovery
from agent.mqtt.payloads import event_payload, response_body, result_payload
from agent.mqtt.topics import Topics

__all__ = [
    "MAX_PAYLOAD",
    "MqttBridge",
    "ParsedCommand",
    "Probe",
    "Rejected",
    "Reply",
    "RequestCache",
    "Topics",
    "check_age",
    "event_payload",
    "ha_button_template",
    "ha_discovery",
    "new_client",
    "no_delay",
    "parse_command",
    "peek_request_id",
    "probe",
    "response_body",
    "result_payload",
]
