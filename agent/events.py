"""The one event stream: the kiosk page (SSE), the MQTT bridge and the indicator LEDs all follow it.

Publishers call ``bus.publish(Event(...))`` from any thread; it never blocks. Each subscriber gets its own
bounded queue (a slow kiosk browser drops its oldest events, it never slows the scheduler) or a callback run on
the bus's dispatch thread (keep callbacks short; they must not block).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """`type` is `job.<state>`, `job.progress`, `agent.mode`, `capture.refused`, `alarm` ..."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)
    seq: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.data}


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self._q: queue.Queue[Event] = queue.Queue(maxsize=maxsize)
        self.dropped = 0

    def _offer(self, ev: Event) -> None:
        while True:
            try:
                self._q.put_nowait(ev)
                return
            except queue.Full:
                try:
                    self._q.get_nowait()  # drop the oldest: the newest state matters most
                    self.dropped += 1
                except queue.Empty:
                    pass

    def get(self, timeout: float | None = None) -> Event | None:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._bus._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._callbacks: list[Callable[[Event], None]] = []
        self._seq = itertools.count(1)
        self._pending: queue.SimpleQueue[Event | Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._dispatch, name="event-bus", daemon=True)
        self._thread.start()

    def publish(self, type_: str, **data: Any) -> Event:
        ev = Event(type_, {k: v for k, v in data.items() if v is not None}, seq=next(self._seq))
        with self._lock:
            subs = list(self._subs)
        for s in subs:
            s._offer(ev)
        if self._callbacks:
            self._pending.put(ev)
        return ev

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the bus thread, in order with the events (state derived from events stays on one thread)."""
        self._pending.put(fn)

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until everything published so far has been dispatched (e.g. the mode derived from it)."""
        done = threading.Event()
        self._pending.put(done.set)
        return done.wait(timeout)

    def subscribe(self, maxsize: int = 256) -> Subscription:
        s = Subscription(self, maxsize)
        with self._lock:
            self._subs.append(s)
        return s

    def on_event(self, cb: Callable[[Event], None]) -> None:
        """Call `cb(event)` on the bus thread for every event (MQTT publisher, LEDs)."""
        with self._lock:
            self._callbacks.append(cb)

    def remove_callback(self, cb: Callable[[Event], None]) -> None:
        with self._lock:
            if cb in self._callbacks:
                self._callbacks.remove(cb)

    def _unsubscribe(self, s: Subscription) -> None:
        with self._lock:
            if s in self._subs:
                self._subs.remove(s)

    def _dispatch(self) -> None:
        while True:
            ev = self._pending.get()
            if ev is None:
                return
            if not isinstance(ev, Event):
                try:
                    ev()
                except Exception:
                    log.exception("bus task %r failed", ev)
                continue
            with self._lock:
                cbs = list(self._callbacks)
            for cb in cbs:
                try:
                    cb(ev)
                except Exception:  # a broken listener must never stop the others
                    log.exception("event listener %r failed on %s", cb, ev.type)

    def close(self) -> None:
        self._pending.put(None)
