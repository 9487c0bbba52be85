"""Home Assistant MQTT discovery: one retained device document for the whole booth.

On ``<discovery_prefix>/device/<device_id>/config``: a button per profile, a select of the profiles and their
choices with a "Capture selected" button (selection.py), Mode / Queue depth / Last error sensors
over B/state, an image entity on B/result/url, availability on B/status. The buttons publish to the ordinary
B/cmd/capture through a ``command_template`` that HA renders on each press into
``{"request_id":"ha-<now>","profile":...,"ts":<now>,"ttl_s":60}``: no special topic, and dedupe and expiry apply
to HA exactly as to any other sender.

Removal, as Home Assistant documents it for device-based discovery: an empty retained payload on the config topic
removes the device and all its entities (discovery turned off); a component that is left out of ``cmps`` is NOT
removed, it must be sent once as ``{"p": "<platform>"}`` with no other key, then the document is sent again
without it (a profile removed). So the agent remembers what it announced: ``<state_dir>/ha-discovery.json``
(topic and each component's platform), written once the broker acknowledged the document. A file rather than
reading our own retained document back: it needs no subscription under the discovery prefix when discovery is off,
and no wait for a retained message that may never come.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.durable import write_durable
from agent.mqtt.selection import options
from agent.mqtt.topics import Topics

if TYPE_CHECKING:
    from agent.config import Config

HA_COMMAND_TTL_S = 60  # a Home Assistant press older than this (booth offline) is not a photo anyone wants


def ha_button_template(profile: str | None) -> str:
    """HA renders this on every press: a fresh request_id and ts, so dedupe and ttl work as for any sender.
    `profile` None: the booth's current selection (``"selected": true``)."""
    target = '"selected":true' if profile is None else '"profile":"' + profile + '"'
    return (
        "{% set t = now().timestamp() %}"
        '{"request_id":"ha-{{ t }}",' + target + ',"ts":{{ t }},"ttl_s":' + str(HA_COMMAND_TTL_S) + "}"
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
    cmps.update(_catalogue_components(config, topics, uid))
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
    for key, name, icon, unit in (
        ("captures", "Photos today", "mdi:camera-burst", "photos"),
        ("done", "Results today", "mdi:image-check", "results"),
        ("failed", "Failed today", "mdi:image-remove", "jobs"),
        ("prints", "Prints today", "mdi:printer", "prints"),
        ("median_s", "Time to result today (median)", "mdi:timer-outline", "s"),
    ):
        cmps[f"today_{key}"] = {  # the booth owner's numbers (agent/stats.py), from B/state's "today"
            "p": "sensor",
            "name": name,
            "unique_id": f"{uid}_today_{key}",
            "icon": icon,
            "state_topic": topics.state,
            "state_class": "measurement" if key == "median_s" else "total",
            "unit_of_measurement": unit,
            "value_template": f"{{{{ (value_json.today or {{}}).{key} | default(0, true) }}}}",
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


def _catalogue_components(config: Config, topics: Topics, uid: str) -> dict[str, dict[str, Any]]:
    """A select of the profiles and their choices (kept on the booth: selection.py) and a button that captures
    with the selection."""
    return {
        "selection": {
            "p": "select",
            "name": "Effect",
            "unique_id": f"{uid}_selection",
            "icon": "mdi:hanger",
            "command_topic": topics.selection_set,
            "state_topic": topics.selection,
            "options": options(config),
            "qos": 1,
            "retain": False,
        },
        "capture_selected": {
            "p": "button",
            "name": "Capture selected",
            "unique_id": f"{uid}_capture_selected",
            "icon": "mdi:camera-iris",
            "command_topic": topics.command("capture"),
            "command_template": ha_button_template(None),
            "qos": 1,
            "retain": False,
        },
    }


ANNOUNCED_FILE = "ha-discovery.json"


@dataclass(frozen=True)
class Announced:
    """What the booth last announced: the config topic and each component's platform (`p`)."""

    topic: str
    components: dict[str, str]

    @classmethod
    def of(cls, topic: str, doc: dict[str, Any]) -> Announced:
        return cls(topic, {k: str(c["p"]) for k, c in doc["cmps"].items()})

    @classmethod
    def load(cls, state_dir: Path) -> Announced | None:
        try:
            raw = json.loads((state_dir / ANNOUNCED_FILE).read_text())
            return cls(str(raw["topic"]), {str(k): str(v) for k, v in dict(raw["components"]).items()})
        except (OSError, ValueError, KeyError, TypeError):
            return None  # nothing announced (or a damaged record: nothing we can remove)

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        body = {"topic": self.topic, "components": self.components}
        write_durable(state_dir / ANNOUNCED_FILE, json.dumps(body, indent=1, sort_keys=True).encode())

    @staticmethod
    def forget(state_dir: Path) -> None:
        (state_dir / ANNOUNCED_FILE).unlink(missing_ok=True)


def with_removals(doc: dict[str, Any], before: Announced | None) -> tuple[dict[str, Any], list[str]]:
    """`doc` plus ``{"p": platform}`` for each component announced before and gone now (HA removes those), and
    their names; the names are empty when nothing is gone."""
    if before is None:
        return doc, []
    gone = sorted(k for k in before.components if k not in doc["cmps"])
    if not gone:
        return doc, []
    return {**doc, "cmps": {**doc["cmps"], **{k: {"p": before.components[k]} for k in gone}}}, gone
