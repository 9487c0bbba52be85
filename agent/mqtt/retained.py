"""What the booth keeps retained on the broker besides B/status, kept true across restarts and stops:

- B/state after a clean stop: the last counts with mode "stopped" (a retained "ready" would be a lie);
- B/result after a restart: the job that finished last, from the job store (the bridge publishes it on every
  connect, so a broker that lost its retained messages gets it back);
- Home Assistant discovery: announced, with what is gone removed; or, with discovery off, the device removed if
  this booth announced it (homeassistant.py says what Home Assistant needs for each);
- B/profiles and B/selection: the catalogue and the current selection (selection.py), on every connect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.events import Event
from agent.mqtt.homeassistant import Announced, ha_discovery, with_removals
from agent.mqtt.payloads import result_payload
from agent.mqtt.selection import Selection, catalogue
from agent.mqtt.topics import Topics

if TYPE_CHECKING:
    from agent.core import Agent

log = logging.getLogger("agent.mqtt.bridge")

PublishAcked = Callable[[str, Any], bool]  # publish retained (QoS 1), True once the broker took it


def final_state(agent: Agent) -> dict[str, Any]:
    """B/state after a clean stop."""
    try:
        state = dict(agent.state())
    except Exception:  # the core is already gone: say the least that is true
        state = {"version": __version__, "device": agent.config.device.id}
    state.update(mode="stopped", detail="the agent stopped", current_job=None)
    return state


def stored_result(agent: Agent) -> dict[str, Any] | None:
    """B/result from the job store: the job that finished last (a restarted agent has had no `result` event)."""
    from agent.jobs.model import JobState
    from agent.steps.present import presented

    try:
        done = agent.store.list([JobState.DONE], limit=20)
    except Exception:  # no store (yet): nothing to publish
        log.debug("MQTT: no finished job to publish on B/result", exc_info=True)
        return None
    if not done:
        return None
    last = max(done, key=lambda j: j.finished_at or j.updated_at)
    return result_payload(Event("result", presented(last)))


def sync_discovery(agent: Agent, topics: Topics, publish: PublishAcked) -> None:
    """Announce the booth to Home Assistant, removing the components announced before and gone now; with discovery
    off, remove the device if this booth announced it. Stops at the first message the broker did not take: the
    next connect tries again (the record of what was announced changes only once the broker has the document)."""
    config = agent.config
    topic, state_dir = topics.ha_config, config.device.state_dir
    before = Announced.load(state_dir)
    if before is not None and before.topic != topic:
        before = None  # device.id or discovery_prefix changed: that device may be another booth's now
    if not config.mqtt.homeassistant_discovery:
        if before is not None and publish(topic, b""):
            Announced.forget(state_dir)
            log.info("MQTT: Home Assistant discovery is off: removed the device announced on %s", topic)
        return
    doc = ha_discovery(config, topics)
    removing, gone = with_removals(doc, before)
    if gone:
        if not publish(topic, removing):
            return
        log.info("MQTT: Home Assistant: removed %s", ", ".join(gone))
    now = Announced.of(topic, doc)
    if publish(topic, doc) and now != before:
        now.save(state_dir)


def publish_catalogue(agent: Agent, topics: Topics, selection: Selection, publish: PublishAcked) -> None:
    """B/profiles (the profiles and choices) and B/selection (what Home Assistant's select shows), retained."""
    if publish(topics.profiles, catalogue(agent.config, agent.public_base)):
        publish(topics.selection, selection.current(agent.config))
