"""JobStore: the durable queue (SQLite, WAL, synchronous=FULL, explicit transactions).

Every state change is a compare-and-set (``UPDATE ... WHERE id=? AND state IN (...)``), so the daemon, the CLI
(``edge-agent queue ...``, which works with the daemon running or stopped) and a crash can never disagree about a
job: whoever changes the state first wins, and the loser sees it.
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agent import clock
from agent.jobs.lifecycle import InvalidTransition, check_edges
from agent.jobs.model import ACTIVE_STATES, FINAL_STATES, WORK_STATES, Job, JobState
from agent.jobs.progress import settle
from agent.jobs.rows import ADDED_COLUMNS, ADDED_INDEXES, HISTORY_MAX, SCHEMA, SCHEMA_VERSION, from_row, to_row
from agent.jobs.sqlite import Tx, state_value, where_clause

_STATE_FIELDS = frozenset({"state", "history", "finished_at", "id"})  # written by moves only


class PrefixTooShort(LookupError):
    """A job id prefix too short to look up (a usage error, not a missing job)."""


class StoreError(Exception):
    def __init__(self, message: str, corrupt: bool = False) -> None:
        super().__init__(message)
        self.corrupt = corrupt


class JobStore:
    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        try:
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=10)
        except sqlite3.Error as e:
            raise StoreError(
                f"cannot open the job store {self.path}: {e} (check that the agent's user owns {self.path.parent})"
            ) from None
        self._db.row_factory = sqlite3.Row
        try:
            self._init(readonly)
        except sqlite3.OperationalError as e:  # read-only, locked, cannot open: not damage
            self._db.close()
            raise StoreError(
                f"cannot use the job store {self.path}: {e} (check that the agent's user owns "
                f"{self.path.parent} and the files in it)"
            ) from None
        except sqlite3.DatabaseError as e:  # "file is not a database", "database disk image is malformed"
            self._db.close()
            raise StoreError(f"the job store {self.path} is damaged: {e}", corrupt=True) from None

    def _init(self, readonly: bool) -> None:
        self._db.execute("PRAGMA busy_timeout = 10000")
        if not readonly:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            with self._tx():
                for stmt in filter(str.strip, SCHEMA.split(";")):
                    self._db.execute(stmt)
                have = {r[1] for r in self._db.execute("PRAGMA table_info(jobs)")}
                for col, typ in ADDED_COLUMNS.items():
                    if col not in have:  # a queue from an older version: keep its jobs, add the column
                        self._db.execute(f"ALTER TABLE jobs ADD COLUMN {col} {typ}")
                for stmt in ADDED_INDEXES:
                    self._db.execute(stmt)
                self._db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )

    # ------------------------------------------------------------------------------------------ plumbing

    def _tx(self, durable: bool = True) -> Tx:
        return Tx(self._db, self._lock, durable)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def integrity_check(self) -> str:
        with self._lock:
            return self._db.execute("PRAGMA quick_check").fetchone()[0]

    # ------------------------------------------------------------------------------------------ writes

    def insert(self, job: Job) -> None:
        settle(job)
        row = to_row(job)
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._tx():
            self._db.execute(f"INSERT INTO jobs ({cols}) VALUES ({marks})", list(row.values()))

    def transition(
        self,
        job_id: str,
        from_states: Iterable[JobState],
        to_state: JobState,
        note: str | None = None,
        **changes: Any,
    ) -> Job | None:
        """Move a job to `to_state` if it is in one of `from_states`; returns the new job or None if it was not.
        Only edges of the lifecycle table are allowed (InvalidTransition otherwise)."""
        return self.move(job_id, {JobState(f): to_state for f in from_states}, note=note, **changes)

    def move(
        self,
        job_id: str,
        edges: dict[JobState, JobState],
        note: str | None = None,
        *,
        durable: bool = True,
        **changes: Any,
    ) -> Job | None:
        """Compare-and-set: if the job is in one of `edges`' states, move it to that edge's target with `changes`
        (one transaction); None when it is not (someone else moved it first). Callers: agent/jobs/lifecycle.py.
        `durable=False`: committed without waiting for the disk (see agent/jobs/sqlite.py, Tx)."""
        for frm, to in edges.items():
            check_edges((frm,), to)
        states = [state_value(s) for s in edges]
        if not states:
            return None
        now = clock.now()
        with self._tx(durable):
            row = self._db.execute(
                f"SELECT * FROM jobs WHERE id = ? AND state IN ({','.join('?' * len(states))})", [job_id, *states]
            ).fetchone()
            if row is None:
                return None
            job = from_row(row)
            to_state = edges[job.state]
            for k, v in changes.items():
                setattr(job, k, v)
            entry: dict[str, Any] = {"ts": round(now, 3), "state": to_state.value}
            if note:
                entry["note"] = note
            if to_state != job.state or note:
                job.history = (job.history + [entry])[-HISTORY_MAX:]
            job.state = to_state
            job.updated_at = now
            if to_state in FINAL_STATES and job.finished_at is None:
                job.finished_at = now
            self._write(job)
            return job

    def update(self, job_id: str, in_states: Iterable[JobState], *, durable: bool = True, **changes: Any) -> Job | None:
        """Change fields without a state change (progress, next poll time), only while in `in_states`. A state
        only ever changes through `move` (the lifecycle's table). `durable=False`: see sqlite.Tx."""
        if changes.keys() & _STATE_FIELDS:
            raise InvalidTransition(
                f"update() cannot change {', '.join(sorted(changes.keys() & _STATE_FIELDS))}; use a lifecycle move"
            )
        states = list(in_states)
        with self._tx(durable):
            row = self._db.execute(
                f"SELECT * FROM jobs WHERE id = ? AND state IN ({','.join('?' * len(states))})",
                [job_id, *[state_value(s) for s in states]],
            ).fetchone()
            if row is None:
                return None
            job = from_row(row)
            for k, v in changes.items():
                setattr(job, k, v)
            job.updated_at = clock.now()
            self._write(job)
            return job

    def _write(self, job: Job) -> None:
        settle(job)  # the stage a guest reads follows the state, on every write
        row = to_row(job)
        sets = ", ".join(f"{k} = ?" for k in row if k != "id")
        self._db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", [v for k, v in row.items() if k != "id"] + [job.id])

    def wake(self, platform: str, wait_kind: str) -> int:
        """Make every job of `platform` waiting for `wait_kind` due now (the platform is reachable again)."""
        now = clock.now()
        with self._tx():
            cur = self._db.execute(
                "UPDATE jobs SET next_attempt_at = ?, wait_kind = NULL WHERE platform = ? AND wait_kind = ? "
                f"AND state IN ({','.join('?' * len(WORK_STATES))}) AND next_attempt_at > ?",
                [now, platform, wait_kind, *[s.value for s in WORK_STATES], now],
            )
            return cur.rowcount

    def delete(
        self, job_ids: Iterable[str], only_states: Iterable[JobState] | None = None, keep_printing: bool = False
    ) -> list[str]:
        """Delete these jobs (only while in `only_states`, when given; with `keep_printing`, never one whose print
        is not out yet, checked in the same transaction); returns the ids really deleted."""
        ids = list(job_ids)
        states = [state_value(s) for s in only_states] if only_states is not None else None
        gone: list[str] = []
        with self._tx():
            has_prints = (
                keep_printing
                and self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'prints'").fetchone()
            )
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                q = f"SELECT id FROM jobs WHERE id IN ({','.join('?' * len(chunk))})"
                args: list[Any] = list(chunk)
                if states is not None:
                    q += f" AND state IN ({','.join('?' * len(states))})"
                    args += states
                if has_prints:
                    q += " AND id NOT IN (SELECT job_id FROM prints WHERE state IN ('queued','sent','printing','held'))"
                found = [r[0] for r in self._db.execute(q, args).fetchall()]
                if found:
                    self._db.execute(f"DELETE FROM jobs WHERE id IN ({','.join('?' * len(found))})", found)
                gone += found
        return gone

    # ------------------------------------------------------------------------------------------ reads

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return from_row(row) if row else None

    def find_by_request_id(self, request_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE request_id = ? ORDER BY created_at LIMIT 1", (request_id,)
            ).fetchone()
        return from_row(row) if row else None

    def find_by_share_token(self, token: str) -> Job | None:
        """The job whose share page is /share/<token> (kiosk QR codes); indexed (jobs_share)."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE share_token = ? LIMIT 1", (token,)).fetchone()
        return from_row(row) if row else None

    def resolve(self, ref: str, *, min_prefix: int = 4) -> Job:
        """A job by full id, or by a unique prefix of at least `min_prefix` characters (technicians type the first
        few). Raises LookupError with a message a person can act on."""
        ref = ref.strip().lower()
        job = self.get(ref)
        if job is not None:
            return job
        if len(ref) < min_prefix:
            raise PrefixTooShort(f"give at least {min_prefix} characters of the job id (got {ref!r})")
        matches = self.find(ref)
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise LookupError(f"{ref!r} matches {len(matches)} jobs; give more characters")
        raise LookupError(f"no job {ref!r}")

    def find(self, prefix: str) -> list[Job]:
        """Jobs whose id starts with `prefix` (technicians type the first few characters)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE id >= ? AND id < ? ORDER BY created_at LIMIT 20", (prefix, prefix + "\uffff")
            ).fetchall()
        return [from_row(r) for r in rows]

    def due(
        self,
        now: float,
        states: Iterable[JobState],
        limit: int,
        exclude: Iterable[str] = (),
        skip_platforms: Iterable[str] = (),
        only_ids: Iterable[str] | None = None,
        priority: int | None = None,
    ) -> list[Job]:
        """Jobs in `states` whose time has come: guests waiting first (priority), then the oldest. The filters
        are applied in SQL, so jobs that cannot be worked on never crowd out those that can."""
        where, args = where_clause(states, exclude, skip_platforms, only_ids, priority)
        q = f"SELECT * FROM jobs WHERE {where} AND next_attempt_at <= ? ORDER BY priority DESC, created_at ASC LIMIT ?"
        with self._lock:
            rows = self._db.execute(q, [*args, now, limit]).fetchall()
        return [from_row(r) for r in rows]

    def next_due_time(
        self,
        states: Iterable[JobState],
        exclude: Iterable[str] = (),
        skip_platforms: Iterable[str] = (),
        only_ids: Iterable[str] | None = None,
        priority: int | None = None,
    ) -> float | None:
        where, args = where_clause(states, exclude, skip_platforms, only_ids, priority)
        with self._lock:
            row = self._db.execute(f"SELECT MIN(next_attempt_at) FROM jobs WHERE {where}", args).fetchone()
        return row[0]

    def count_by_platform(self, states: Iterable[JobState]) -> dict[str, int]:
        where, args = where_clause(states)
        with self._lock:
            rows = self._db.execute(f"SELECT platform, COUNT(*) FROM jobs WHERE {where} GROUP BY platform", args)
            return {r[0]: r[1] for r in rows.fetchall()}

    def demote(self, platform: str) -> int:
        """Queued photos of a platform that went away become backlog: a guest arriving later goes first."""
        with self._tx():
            return self._db.execute(
                "UPDATE jobs SET priority = 0 WHERE platform = ? AND state = ? AND priority > 0",
                (platform, JobState.CAPTURED.value),
            ).rowcount

    def count_in(self, states: Iterable[JobState], priority: int | None = None) -> int:
        st = [state_value(s) for s in states]
        q = f"SELECT COUNT(*) FROM jobs WHERE state IN ({','.join('?' * len(st))})"
        args: list[Any] = list(st)
        if priority is not None:
            q += " AND priority = ?"
            args.append(priority)
        with self._lock:
            return self._db.execute(q, args).fetchone()[0]

    def usage(self) -> tuple[int, int]:
        """(jobs not yet final, bytes of their photos): what the queue's bounds count."""
        st = [s.value for s in WORK_STATES]
        with self._lock:
            row = self._db.execute(
                f"SELECT COUNT(*), COALESCE(SUM(capture_bytes), 0) FROM jobs WHERE state IN ({','.join('?' * len(st))})",
                st,
            ).fetchone()
        return int(row[0]), int(row[1])

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {r[0]: r[1] for r in rows}

    def counts_created_since(self, ts: float) -> dict[str, int]:
        """Jobs captured since `ts`, by state (the status page's "today")."""
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM jobs WHERE created_at >= ? GROUP BY state", (ts,)
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def list(self, states: Iterable[JobState] | None = None, limit: int = 100, newest_first: bool = True) -> list[Job]:
        q = "SELECT * FROM jobs"
        args: list[Any] = []
        if states is not None:
            st = [state_value(s) for s in states]
            q += f" WHERE state IN ({','.join('?' * len(st))})"
            args += st
        q += f" ORDER BY created_at {'DESC' if newest_first else 'ASC'} LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(q, args).fetchall()
        return [from_row(r) for r in rows]

    def latest(self, states: Iterable[JobState]) -> Job | None:
        jobs = self.list(states, limit=1)
        return jobs[0] if jobs else None

    def last_error(self) -> str | None:
        e = self.last_error_info()
        return e["error"] if e else None

    def last_error_info(self) -> dict[str, Any] | None:
        """The newest recorded error with its job and time."""
        with self._lock:
            row = self._db.execute(
                "SELECT error, id, updated_at, state FROM jobs WHERE error IS NOT NULL ORDER BY updated_at DESC LIMIT 1"
            ).fetchone()
        return {"error": row[0], "job_id": row[1], "at": row[2], "state": row[3]} if row else None

    def meta_get(self, key: str) -> str | None:
        """A small value kept beside the jobs (e.g. the ETA history of a profile, agent/jobs/eta.py)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def meta_set(self, key: str, value: str, durable: bool = True) -> None:
        with self._tx(durable):
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def data_version(self) -> int:
        """Changes whenever another connection (e.g. `edge-agent queue ...`) commits; not for our own writes."""
        with self._lock:
            return self._db.execute("PRAGMA data_version").fetchone()[0]

    def updated_since(self, ts: float, limit: int = 2000) -> builtins.list[Job]:
        """Jobs changed since `ts`, the newest `limit` of them, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM (SELECT * FROM jobs WHERE updated_at >= ? ORDER BY updated_at DESC LIMIT ?) "
                "ORDER BY updated_at",
                (ts, limit),
            ).fetchall()
        return [from_row(r) for r in rows]

    def all_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM jobs")}


__all__ = ["JobStore", "StoreError", "WORK_STATES", "ACTIVE_STATES"]  # re-exported for callers
