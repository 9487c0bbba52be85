"""The booth's topic tree (B = ``<topic_prefix>/<device_id>``), and which Response Topics a sender may ask for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import Config


@dataclass(frozen=True)
class Topics:
    prefix: str
    device_id: str
    discovery_prefix: str = "homeassistant"
    reply_prefix: str | None = None  # `[mqtt] response_topic_prefix`; None: <prefix>/replies

    @classmethod
    def of(cls, config: Config) -> Topics:
        """The topics a config names (`[mqtt] topic_prefix`, `discovery_prefix`, `response_topic_prefix`, `device.id`)."""
        m = config.mqtt
        return cls(m.topic_prefix, config.device.id, m.discovery_prefix, m.response_topic_prefix)

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
    def profiles(self) -> str:
        return f"{self.base}/profiles"

    @property
    def selection(self) -> str:
        return f"{self.base}/selection"

    @property
    def selection_set(self) -> str:
        return f"{self.base}/selection/set"

    @property
    def commands(self) -> str:
        return f"{self.base}/cmd/+"

    @property
    def fleet_commands(self) -> str:
        return f"{self.prefix}/fleet/cmd/+"

    @property
    def replies(self) -> str:
        """MQTT 5 Response Topics a sender may name are below this (besides B/response/...)."""
        return (self.reply_prefix or f"{self.prefix}/replies").rstrip("/")

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
            if topic.startswith(head) and "/" not in topic[len(head) :]:
                return topic[len(head) :]
        return None

    def response_topic_allowed(self, topic: str) -> bool:
        """An MQTT 5 Response Topic we publish on for the requester: B/response/..., or a topic below `replies`.
        Never a wildcard or `$` topic, nothing else in our own or the fleet's namespace, nothing under the discovery
        prefix (whatever the configured prefix says): a sender must not make the agent publish state, results,
        Home Assistant config, or another system's commands (`zigbee2mqtt/front_door/set`) with its credentials."""
        if not topic or any(c in topic for c in "+#\0") or topic.startswith("$"):
            return False
        if topic.startswith(f"{self.base}/response/"):
            return True
        ours = (self.base, f"{self.prefix}/fleet", self.discovery_prefix)
        if any(topic == t or topic.startswith(f"{t}/") for t in ours):
            return False
        return topic.startswith(f"{self.replies}/")
