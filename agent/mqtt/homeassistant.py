"""Home Assistant MQTT discovery: one retained device document for the whole booth.

On ``<discovery_prefix>/device/<device_id>/config``: a button per profile, Mode / Queue depth / Last error sensors
over B/state, an image entity on B/result/url, availability on B/status. The buttons publish to the ordinary
B/cmd/capture through a ``command_template`` that HA renders on each press into
``{"request_id":"ha-<now>","profile":...,"ts":<now>,"ttl_s":60}``: no special topic, and dedupe and expiry apply
to HA exactly as to any other sender.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.mqtt.topics import Topics

if TYPE_CHECKING:
    from agent.config import Config

HA_COMMAND_TTL_S = 60  # a Home Assistant press older than this (booth offline) is not a photo anyone wants


def ha_button_template(profile: str) -> str:
    """HA renders this on every press: a fresh request_id and ts, so dedupe and ttl work as for any sender."""
    return (
        "{% set t = now().timestamp() %}"
        '{"request_id":"ha-{{ t }}","profile":"' + profile + '","ts":{{ t }},"ttl_s":' + str(HA_COMMAND_TTL_S) + "}"
    )


def ha_discovery(config: Config, topics: Topics) -> dict[str, Any]:
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
