"""Two booths with one client id (a copied config, a cloned SD card) take the broker session from each other for
ever: each connection kicks the other one off, both reconnect at once, and `status` flaps many times a second.

``ClientIdGuard`` tells that from an ordinary dropped connection and says how long to stay away. A broker that says
so (MQTT 5 reason 142, "Session taken over") is believed at once. Mosquitto 2.0 closes the socket without a word,
so: the broker ending ``SUSPECT_AFTER`` connections in a row within ``SHORT_S`` of connecting means the same. Then
the next attempts wait ``BACKOFF_FIRST_S``, doubling up to ``BACKOFF_MAX_S``; a connection that lasts ``STABLE_S``
ends it. Pure logic with an injectable clock: the bridge applies the delays and reports `problem`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.durable import write_durable

log = logging.getLogger("agent.mqtt.bridge")

SESSION_TAKEN_OVER = 142  # MQTT 5 DISCONNECT reason code
SHORT_S = 5.0  # a connection the broker ends this soon after it began was "cut short"
SUSPECT_AFTER = 3  # this many cut short in a row: another client uses our client id
BACKOFF_FIRST_S = 5.0
BACKOFF_MAX_S = 60.0
STABLE_S = 90.0  # longer than the other booth's longest wait: it would have taken the session back by then


class ClientIdGuard:
    def __init__(self, client_id: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client_id = client_id
        self._clock = clock
        self.problem: str | None = None  # what to tell the technician while the fight goes on
        self.cut_short = 0  # connections in a row the broker ended soon after they began
        self.backoffs = 0  # delays applied during this fight
        self._connected_at: float | None = None
        self._reported: str | None = None  # the problem as last logged and recorded
        self._lock = threading.Lock()  # paho's network thread reports, the bridge thread asks

    def connected(self) -> None:
        with self._lock:
            self._connected_at = self._clock()

    def lost(self, reason_code: int | None, from_server: bool) -> float | None:
        """A connection ended that we did not end. Returns the delay before the next attempt when this looks like a
        fight over the client id; None: an ordinary drop, reconnect as usual."""
        with self._lock:
            return self._lost(reason_code, from_server)

    def _lost(self, reason_code: int | None, from_server: bool) -> float | None:
        now = self._clock()
        lasted = now - self._connected_at if self._connected_at is not None else float("inf")
        self._connected_at = None
        taken_over = reason_code == SESSION_TAKEN_OVER
        if from_server and not taken_over:
            self.cut_short = 0  # the broker said why, and it was something else
            return None
        if not taken_over and lasted >= (STABLE_S if self.problem else SHORT_S):
            self.cut_short = 0
            return None
        self.cut_short += 1
        if not taken_over and self.cut_short < SUSPECT_AFTER:
            return None
        delay = min(BACKOFF_FIRST_S * 2**self.backoffs, BACKOFF_MAX_S)
        self.backoffs += 1
        why = (
            'the broker said "session taken over"'
            if taken_over
            else f"the broker ended {self.cut_short} connections in a row within {SHORT_S:.0f} s of connecting"
        )
        self.problem = (
            f"another client uses client id {self.client_id} ({why}): the two take the session from each other. "
            f"Reconnecting with a growing delay (up to {BACKOFF_MAX_S:.0f} s); give each booth its own device.id "
            "(or mqtt.client_id)"
        )
        return delay

    def settled(self) -> bool:
        """True once when a fight is over: the current connection has lasted STABLE_S."""
        with self._lock:
            at = self._connected_at
            if self.problem is None or at is None or self._clock() - at < STABLE_S:
                return False
            self.problem, self.cut_short, self.backoffs = None, 0, 0
            return True

    def report(self, state_dir: Path) -> bool:
        """Log a new problem once and record it (or that it is over) for doctor; True when it changed."""
        problem = self.problem
        if problem == self._reported:
            return False
        if problem is not None and self._reported is None:
            log.error("MQTT: %s", problem)
        self._reported = problem
        try:
            write_problem(state_dir, problem)
        except OSError as e:
            log.warning("MQTT: cannot record the problem for doctor: %s", e)
        return True

    def forget(self, state_dir: Path) -> None:
        """At a clean stop: what doctor reads must not outlive the daemon."""
        if self._reported is not None:
            self._reported = None
            write_problem(state_dir, None)


PROBLEM_FILE = "mqtt.json"  # in state_dir while a fight goes on: `edge-agent doctor` reads it


def write_problem(state_dir: Path, problem: str | None) -> None:
    """Record the bridge's problem for `doctor` (another process), or clear it."""
    path = state_dir / PROBLEM_FILE
    if problem is None:
        path.unlink(missing_ok=True)
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    write_durable(path, json.dumps({"problem": problem, "since": round(time.time(), 3)}).encode())


def read_problem(state_dir: Path) -> str | None:
    try:
        problem = json.loads((state_dir / PROBLEM_FILE).read_text())["problem"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(problem) if problem else None
