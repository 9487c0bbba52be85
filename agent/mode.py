"""The booth's mode (what the LEDs, the kiosk, `status` and MQTT state show), derived from events on ONE thread.

Every input to the mode is an event on the bus (job state changes, capture start/end/refusal, platform alarms)
and the derivation runs on the bus's dispatch thread, so a slower thread can never write back a stale mode.

Rules, first match wins::

    starting    before the scheduler runs
    disk_full   the last capture was refused for space (until a capture succeeds)
    capturing   a photo is being taken
    error       the camera is down (failed or retrying): no capture is possible; the detail says why
    error       a platform refused its API key (one alarm per platform, ended by a job delivered on THAT platform)
    offline     jobs wait and a platform is unreachable
    processing  jobs wait
    error       a job failed less than ERROR_HOLD_S ago (ended early by a later job delivered: one captured after
                the failed one; an older job finishing says nothing about the fault)
    ready
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent import clock
from agent.events import Event, EventBus

ERROR_HOLD_S = 30.0  # the error indication stays this long after a failed job (then: ready)


# job events after which the number of unfinished jobs may differ: a new job, an ending, a retried one (back to
# captured); the steps in between (submitting, submitted, downloading, progress) leave it as it is. A queue changed
# by another process comes through refresh(), which asks again.
_COUNT_CHANGES = frozenset({"job.captured", "job.done", "job.failed", "job.cancelled", "job.expired"})


@dataclass
class _Failure:
    at: float
    created_at: float  # of the failed job: a job captured later and delivered ends the indication
    message: str | None


class ModeTracker:
    def __init__(self, events: EventBus, pending: Callable[[], int], offline: Callable[[], Iterable[str]]) -> None:
        self.events = events
        self._pending = pending  # jobs not yet final (a store query)
        self._pending_n: int | None = None  # its last answer; asked again when a job may have begun or ended
        self._offline = offline  # the scheduler's unreachable platforms: the one truth (alarms only re-derive)
        self.mode = "starting"
        self.detail: str | None = None
        self.started = False
        self.capturing = False
        self.disk_full: str | None = None
        self.camera_down: str | None = None  # why no capture is possible (camera service state), else None
        self.alarms: dict[str, str] = {}  # platform -> "API key refused" message
        self._failure: _Failure | None = None
        events.on_event(self._on_event)

    def refresh(self, announce_state: bool = False) -> None:
        """Re-derive soon, on the bus thread (the error hold expiring, a queue changed by another process)."""

        def again() -> None:
            self._pending_n = None
            self._derive(announce_state)

        self.events.call_soon(again)

    def _on_event(self, ev: Event) -> None:
        d = ev.data
        t = ev.type
        if t == "agent.started":
            self.started = True
        elif t == "capture.started":  # published once the disk check passed: there is space again
            self.capturing = True
            self.disk_full = None
        elif t == "capture.ended":
            self.capturing = False
            if d.get("ok"):
                self.disk_full = None
        elif t == "capture.refused":
            self.capturing = False
            if d.get("code") == "disk_full":
                self.disk_full = d.get("message")
        elif t == "camera.state":
            down = d.get("state") in ("failed", "retrying")
            self.camera_down = (d.get("detail") or f"camera {d.get('state')}") if down else None
        elif t == "alarm":
            platform = d.get("platform") or ""
            if d.get("code") == "auth":
                self.alarms[platform] = d.get("message") or "API key refused"
            elif d.get("code") == "disk_full":  # queued jobs cannot write: paused until there is room
                self.disk_full = d.get("message") or "storage full"
            elif d.get("code") == "disk_ok":
                self.disk_full = None
        elif not self.started and t.startswith("job."):
            return  # start-up recovery replays the past: an old failure is not a fault now
        elif t == "job.failed":
            self._failure = _Failure(ev.ts, float(d.get("created_at") or ev.ts), d.get("error"))
        elif t == "job.done":
            self.alarms.pop(d.get("platform") or "", None)  # a delivered job proves that platform's key works
            f = self._failure
            if f is not None and float(d.get("created_at") or 0) >= f.created_at:
                self._failure = None  # a newer job got through: the booth works again
        elif not t.startswith("job."):
            return
        if not t.startswith("job.") or t in _COUNT_CHANGES:
            self._pending_n = None  # a job began or ended (a step between does not change how many wait)
        self._derive(announce_state=(t.startswith("job.") and t != "job.progress") or t in ("alarm", "camera.state"))

    def _compute(self) -> tuple[str, str | None]:
        if not self.started:
            return "starting", None
        if self.disk_full:
            return "disk_full", self.disk_full
        if self.capturing:
            return "capturing", None
        if self.camera_down:
            return "error", f"camera: {self.camera_down}"
        if self.alarms:
            return "error", "; ".join(self.alarms[p] for p in sorted(self.alarms))
        if self._pending_n is None:
            self._pending_n = self._pending()
        pending = self._pending_n
        offline = sorted(self._offline())
        if pending and offline:
            return "offline", f"platform unreachable: {', '.join(offline)}; {pending} waiting"
        if pending:
            return "processing", None
        f = self._failure
        if f is not None and clock.now() - f.at < ERROR_HOLD_S:
            return "error", f.message
        return "ready", None

    def _derive(self, announce_state: bool) -> None:
        mode, detail = self._compute()
        changed = (mode, detail) != (self.mode, self.detail)
        self.mode, self.detail = mode, detail
        if changed:
            self.events.publish("agent.mode", mode=mode, detail=detail)
        if changed or announce_state:
            self.events.publish("agent.state")
