"""Request dedupe: a request_id that reached the core is remembered (the last 1000, for an hour) with its
response, so a repeat (a QoS 1 redelivery, a sender's retry) is answered again and never runs twice."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.mqtt.topics import Topics

DEDUPE_SIZE = 1000
DEDUPE_TTL_S = 3600.0


@dataclass
class Reply:
    """Where one received command is answered."""

    action: str
    response_topic: str | None = None
    correlation_data: bytes | None = None
    refused_topic: str | None = None  # a Response Topic the sender may not name: the command is refused

    @classmethod
    def to(cls, action: str, properties: Any, topics: Topics) -> Reply:
        """B/response/<action>, plus the MQTT 5 Response Topic if it is allowed; the Correlation Data goes with
        either (a refusal on B/response/<action> still carries it, so the sender can match it)."""
        reply = cls(action)
        if properties is None:
            return reply
        cd = getattr(properties, "CorrelationData", None)
        reply.correlation_data = bytes(cd) if cd is not None else None
        rt = getattr(properties, "ResponseTopic", None)
        if isinstance(rt, str) and topics.response_topic_allowed(rt):
            reply.response_topic = rt
        elif rt is not None:
            reply.refused_topic = str(rt)
        return reply


@dataclass
class Entry:
    created: float
    response: dict[str, Any] | None = None  # None while the core has not answered yet
    waiters: list[Reply] = field(default_factory=list)


class RequestCache:
    """The last `size` request_ids (for `ttl_s`) with their responses: a repeat is answered, never re-run."""

    def __init__(
        self, size: int = DEDUPE_SIZE, ttl_s: float = DEDUPE_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def lookup(self, request_id: str, reply: Reply) -> Entry | None:
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

    def add(self, request_id: str, reply: Reply) -> Entry:
        with self._lock:
            entry = self._entries[request_id] = Entry(created=self._clock(), waiters=[reply])
            self._entries.move_to_end(request_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            return entry

    def resolve(self, entry: Entry, response: dict[str, Any]) -> list[Reply]:
        """Record the core's answer; returns every reply still waiting for it."""
        with self._lock:
            entry.response = response
            waiters, entry.waiters = entry.waiters, []
        return waiters

    def __len__(self) -> int:
        return len(self._entries)
