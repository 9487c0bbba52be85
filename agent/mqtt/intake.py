"""CommandIntake: what arrives on B/cmd/<action> (and the fleet's), on paho's network thread. It validates, refuses
what must not run (a retained command, a Response Topic outside the allowed prefix, a bad payload, an expired one,
a repeat), hands the rest to ``agent.request`` and answers when the core's Future is done. It never waits."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho

from agent.commands import CommandError
from agent.mqtt.commands import Rejected, check_age, parse_command, peek_request_id
from agent.mqtt.dedupe import Entry, Reply, RequestCache
from agent.mqtt.payloads import response_body
from agent.mqtt.selection import Selection
from agent.mqtt.topics import Topics

if TYPE_CHECKING:
    from agent.core import Agent

log = logging.getLogger("agent.mqtt.bridge")  # one logger for the bridge and what it is made of

Send = Callable[[Reply, dict[str, Any]], None]


class CommandIntake:
    def __init__(self, agent: Agent, send: Send, *, clock: Callable[[], float] = time.time) -> None:
        self.agent = agent
        self.send = send
        self.clock = clock
        self.requests = RequestCache()
        self.selection = Selection()  # what Home Assistant's select chose (selection.py)

    def handle(self, msg: paho.MQTTMessage, action: str, topics: Topics) -> None:
        reply = Reply.to(action, getattr(msg, "properties", None), topics)
        payload = bytes(msg.payload)
        try:
            if msg.retain:
                raise Rejected(
                    "bad_request",
                    f"commands must not be retained; clear the retained message on {msg.topic}",
                    peek_request_id(payload),
                )
            if reply.refused_topic is not None:
                log.info(
                    "MQTT: %s: refused the Response Topic %r (not below %s/)",
                    action,
                    reply.refused_topic[:200],
                    topics.replies,
                )
                raise Rejected(
                    "bad_request",
                    f"Response Topic {reply.refused_topic[:200]!r} is not allowed: name one below {topics.replies}/ "
                    f"(the answer is also on {topics.response(action)})",
                    peek_request_id(payload),
                )
            if action == "config" and not msg.topic.startswith(f"{topics.base}/"):
                raise Rejected(
                    "bad_request",
                    f"a config is pushed to one device ({topics.base}/cmd/config), never to the fleet",
                    peek_request_id(payload),
                )
            parsed = parse_command(action, payload)
        except Rejected as r:
            self.send(reply, response_body(r.request_id, error=r.as_dict()))
            return

        # Only this (network) thread adds entries, so lookup-then-add cannot race with another message.
        key = f"{action}\0{parsed.request_id}"  # a cancel reusing a capture's id is its own command
        seen = self.requests.lookup(key, reply)
        if seen is not None:
            if seen.response is not None:
                log.info("MQTT: %s %s is a repeat; answering again", action, parsed.request_id)
                self.send(reply, seen.response)
            return  # still pending: this reply is sent when the core answers
        try:
            check_age(parsed, self.clock())
        except Rejected as r:  # not remembered: nothing ran
            self.send(reply, response_body(r.request_id, error=r.as_dict()))
            return
        if parsed.selected:
            parsed.command.profile, parsed.command.choice = self.selection.target(self.agent.config)
        entry = self.requests.add(key, reply)
        log.info("MQTT: %s request %s", action, parsed.request_id)
        try:
            fut = self.agent.request(parsed.command)
        except Exception as e:  # request() should return a future; be safe if it raises instead
            fut = Future()
            fut.set_exception(e)
        rid = parsed.request_id
        fut.add_done_callback(lambda f: self._finish(entry, rid, f))

    def _send_now(self, reply: Reply, body: dict[str, Any]) -> None:
        """Through the bridge running now: a config push may have replaced the one that took the command."""
        current = getattr(self.agent.mqtt, "intake", None)
        (current.send if current is not None else self.send)(reply, body)

    def _finish(self, entry: Entry, request_id: str, fut: Future[Any]) -> None:
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
            self._send_now(reply, body)
