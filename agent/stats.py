"""Statistics for the booth owner: per day and per event, captures, jobs done and failed by cause, prints, and the
time from the press to the result (median and 95th percentile).

They are computed from the queue itself (the ``jobs`` table), so nothing is lost when the daemon crashes between
a job's end and a counter update. Jobs that retention deletes leave a one-line summary in ``stats_archive`` first
(no photo, no prompt, no error text: only what the numbers need), so the figures outlive the photos.

An *event* is a named period (a wedding, a shop's weekend): `edge-agent stats --start-event NAME` begins one;
it lasts until the next. Prints are counted from the print records when the printer keeps them.
"""

from __future__ import annotations

import re
import sqlite3
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.jobs.model import Job

SCHEMA = """
CREATE TABLE IF NOT EXISTS stats_archive (
    job_id TEXT PRIMARY KEY, profile TEXT NOT NULL, source TEXT NOT NULL, state TEXT NOT NULL,
    created_at REAL NOT NULL, finished_at REAL, cause TEXT
);
CREATE TABLE IF NOT EXISTS booth_events (started_at REAL PRIMARY KEY, name TEXT NOT NULL);
"""
FAILED = ("failed", "expired", "cancelled")

# Why a job did not deliver, from the state and the reason the agent itself wrote (platforms' words vary; these
# phrases are the agent's own, see agent/platforms/errors.py and the scheduler).
_CAUSES = (
    ("download", re.compile(r"^output|download|too large", re.I)),
    ("auth", re.compile(r"\b(401|403)\b|api key|unauthori[sz]ed|forbidden", re.I)),
    ("rejected", re.compile(r"\bHTTP 4\d\d\b|rejected|refused", re.I)),
    ("network", re.compile(r"no answer|timed out|timeout|took longer|connect|unreachable|network", re.I)),
    ("platform", re.compile(r"failed the task|\bHTTP 5\d\d\b|failed:", re.I)),
)


def cause_of(state: str, error: str | None) -> str | None:
    if state == "done" or state not in FAILED:
        return None
    if state != "failed":
        return "deadline" if state == "expired" else "cancelled"
    for name, pattern in _CAUSES:
        if error and pattern.search(error):
            return name
    return "other"


def _connect(db: Path) -> sqlite3.Connection:
    c = sqlite3.connect(db, timeout=10)
    c.executescript(SCHEMA)
    return c


def archive(db: Path, jobs: Iterable[Job]) -> None:
    """Keep the numbers of jobs about to be deleted (retention, `queue purge`)."""
    rows = [
        (j.id, j.profile, j.source, j.state.value, j.created_at, j.finished_at, cause_of(j.state.value, j.error))
        for j in jobs
    ]
    with _connect(db) as c:
        c.executemany("INSERT OR REPLACE INTO stats_archive VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def start_event(db: Path, name: str, at: float | None = None) -> None:
    with _connect(db) as c:
        c.execute("INSERT OR REPLACE INTO booth_events VALUES (?, ?)", (at or time.time(), name))


def events(db: Path) -> list[tuple[float, str]]:
    with _connect(db) as c:
        return [(r[0], r[1]) for r in c.execute("SELECT started_at, name FROM booth_events ORDER BY started_at")]


@dataclass
class Bucket:
    captures: int = 0
    done: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    waiting: int = 0
    prints: int = 0
    seconds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        s = sorted(self.seconds)
        return {
            "captures": self.captures,
            "done": self.done,
            "failed": sum(self.failed.values()),
            "failed_by_cause": dict(sorted(self.failed.items())),
            "waiting": self.waiting,
            "prints": self.prints,
            "median_s": round(statistics.median(s), 1) if s else None,
            "p95_s": round(s[min(len(s) - 1, int(0.95 * len(s)))], 1) if s else None,
        }


def _rows(c: sqlite3.Connection, since: float) -> list[tuple[str, str, float, float | None, str | None]]:
    """(job_id, state, created_at, finished_at, cause) of live and archived jobs since `since`."""
    out = [
        (r[0], r[1], r[2], r[3], cause_of(r[1], r[4]))
        for r in c.execute("SELECT id, state, created_at, finished_at, error FROM jobs WHERE created_at >= ?", (since,))
    ]
    out += list(
        c.execute(
            "SELECT job_id, state, created_at, finished_at, cause FROM stats_archive WHERE created_at >= ? "
            "AND job_id NOT IN (SELECT id FROM jobs)",
            (since,),
        )
    )
    return out


def _prints(c: sqlite3.Connection, since: float) -> list[float]:
    """When each print came out, if the print records exist (the printer's own table)."""
    have = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "prints" not in have:
        return []
    cols = {r[1] for r in c.execute("PRAGMA table_info(prints)")}
    when = "updated_at" if "updated_at" in cols else "created_at"
    return [r[0] for r in c.execute(f"SELECT {when} FROM prints WHERE state = 'printed' AND {when} >= ?", (since,))]


def report(db: Path, days: int = 7, now: float | None = None) -> dict[str, Any]:
    """Per day (local time, newest first) for the last `days` days, per event, and in all."""
    now = now or time.time()
    since = time.mktime(time.localtime(now - (days - 1) * 86400)[:3] + (0, 0, 0, 0, 0, -1))
    by_day: dict[str, Bucket] = {}
    by_event: dict[str, Bucket] = {}
    total = Bucket()
    with _connect(db) as c:
        rows = _rows(c, since)
        prints = _prints(c, since)
        evs = [(r[0], r[1]) for r in c.execute("SELECT started_at, name FROM booth_events ORDER BY started_at")]

    def event_at(t: float) -> str | None:
        name = None
        for start, n in evs:
            if start <= t:
                name = n
        return name

    def buckets(t: float) -> list[Bucket]:
        out = [by_day.setdefault(time.strftime("%Y-%m-%d", time.localtime(t)), Bucket()), total]
        ev = event_at(t)
        if ev is not None:
            out.append(by_event.setdefault(ev, Bucket()))
        return out

    for _id, state, created, finished, cause in rows:
        for b in buckets(created):
            b.captures += 1
            if state == "done":
                b.done += 1
                if finished:
                    b.seconds.append(max(0.0, finished - created))
            elif state in FAILED:
                b.failed[cause or "other"] = b.failed.get(cause or "other", 0) + 1
            else:
                b.waiting += 1
    for t in prints:
        for b in buckets(t):
            b.prints += 1
    return {
        "days": {d: b.as_dict() for d, b in sorted(by_day.items(), reverse=True)},
        "events": {e: b.as_dict() for e, b in by_event.items()},
        "current_event": evs[-1][1] if evs else None,
        "total": total.as_dict(),
    }
