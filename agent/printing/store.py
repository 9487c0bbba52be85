"""PrintStore: print records in their own table of the queue database (jobs.db), with their own connection.

A print is recorded before anything is sent, and every change is a compare-and-set like the job store's, so the
daemon and the CLI (`edge-agent printer reset-count`) never disagree. The event counter is not a number kept in
step with the prints: it is the sheets of every print since the operator's last reset (a time in `print_meta`),
so it cannot drift after a crash.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

from agent import clock
from agent.printing.model import EDGES, OPEN_STATES, PrintRecord, PrintState

SCHEMA = """
CREATE TABLE IF NOT EXISTS prints (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    copies INTEGER NOT NULL,
    state TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    cups_job_id TEXT,
    detail TEXT,
    auto INTEGER NOT NULL DEFAULT 0,
    request_id TEXT
);
CREATE INDEX IF NOT EXISTS prints_job ON prints(job_id);
CREATE INDEX IF NOT EXISTS prints_state ON prints(state);
CREATE UNIQUE INDEX IF NOT EXISTS prints_auto_once ON prints(job_id) WHERE auto = 1;
CREATE TABLE IF NOT EXISTS print_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLS = (
    "id",
    "job_id",
    "copies",
    "state",
    "source",
    "created_at",
    "updated_at",
    "cups_job_id",
    "detail",
    "auto",
    "request_id",
)


def _record(row: sqlite3.Row) -> PrintRecord:
    d = dict(row)
    d["state"] = PrintState(d["state"])
    d["auto"] = bool(d["auto"])
    return PrintRecord(**d)


class PrintStore:
    def __init__(self, db_path: Path) -> None:
        self.path = Path(db_path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=10)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout = 10000")
        self._db.execute("PRAGMA synchronous = FULL")  # a recorded print survives a power cut
        with self._lock:
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self, sql: str, args: list[Any]) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    # ------------------------------------------------------------------------------------------ writes

    def add(
        self, job_id: str, copies: int, source: str, *, auto: bool = False, request_id: str | None = None
    ) -> PrintRecord | None:
        """Record a new queued print; None when it is an auto print and this job already has one."""
        now = clock.now()
        rec = PrintRecord(
            uuid.uuid4().hex, job_id, copies, PrintState.QUEUED, source, now, now, auto=auto, request_id=request_id
        )
        row = rec.public()
        row["id"] = row.pop("print_id")
        row["auto"] = int(auto)
        try:
            self._tx(
                f"INSERT INTO prints ({', '.join(_COLS)}) VALUES ({', '.join('?' * len(_COLS))})",
                [row[c] for c in _COLS],
            )
        except sqlite3.IntegrityError:
            if auto:
                return None
            raise
        return rec

    def move(self, print_id: str, to: PrintState, **changes: Any) -> PrintRecord | None:
        """Compare-and-set along the table in model.py; None when the print is not in a state that may move there
        (someone moved it first)."""
        with self._lock:
            rec = self.get(print_id)
            if rec is None or (rec.state != to and to not in EDGES[rec.state]):
                return None
            sets = {"state": to.value, "updated_at": clock.now(), **changes}
            cur = self._db.execute(
                f"UPDATE prints SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ? AND state = ?",
                [*sets.values(), print_id, rec.state.value],
            )
            return self.get(print_id) if cur.rowcount else None

    def reset_event(self) -> float:
        """The operator starts a new event: the per-event counter counts from now."""
        now = clock.now()
        self._tx("INSERT OR REPLACE INTO print_meta(key, value) VALUES ('event_started_at', ?)", [repr(now)])
        return now

    # ------------------------------------------------------------------------------------------ reads

    def get(self, print_id: str) -> PrintRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM prints WHERE id = ?", (print_id,)).fetchone()
        return _record(row) if row else None

    def open_prints(self) -> list[PrintRecord]:
        marks = ",".join("?" * len(OPEN_STATES))
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM prints WHERE state IN ({marks}) ORDER BY created_at", [s.value for s in OPEN_STATES]
            ).fetchall()
        return [_record(r) for r in rows]

    def for_job(self, job_id: str) -> list[PrintRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM prints WHERE job_id = ? ORDER BY created_at", (job_id,)).fetchall()
        return [_record(r) for r in rows]

    def recent(self, limit: int = 20) -> list[PrintRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM prints ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
        return [_record(r) for r in rows]

    def has_auto(self, job_id: str) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM prints WHERE job_id = ? AND auto = 1", (job_id,)).fetchone() is not None
            )

    def event_started_at(self) -> float:
        with self._lock:
            row = self._db.execute("SELECT value FROM print_meta WHERE key = 'event_started_at'").fetchone()
        return float(row[0]) if row else 0.0

    def sheets(self, *, job_id: str | None = None, since: float | None = None) -> int:
        """Sheets asked for (copies of every print that did not fail), for one job or since a time."""
        q = "SELECT COALESCE(SUM(copies), 0) FROM prints WHERE state != ?"
        args: list[Any] = [PrintState.FAILED.value]
        if job_id is not None:
            q += " AND job_id = ?"
            args.append(job_id)
        if since is not None:
            q += " AND created_at >= ?"
            args.append(since)
        with self._lock:
            return int(self._db.execute(q, args).fetchone()[0])

    def last_created_at(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MAX(created_at) FROM prints").fetchone()
        return row[0]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM prints GROUP BY state").fetchall()
        return {r[0]: r[1] for r in rows}
