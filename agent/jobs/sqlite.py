"""The job store's SQLite plumbing: transactions that wait for the disk or not, and the WHERE clauses of its
queries (agent/jobs/store.py holds the queries themselves)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from typing import Any

from agent.jobs.model import JobState


class Tx:
    """BEGIN IMMEDIATE ... COMMIT under the store's thread lock (a writer never waits half-way).

    A durable transaction waits for the disk (synchronous = FULL). One that is not (synchronous = NORMAL for that
    commit only) is just as atomic and the database as consistent after a power cut, but the change itself may be
    lost there: for the steps between milestones (a poll's progress, a sync answer, "the task is done", the ETA
    history), where losing it costs a repeated poll or download, or the resubmit the at-least-once window already
    allows. The next durable commit makes every earlier one durable too (the WAL is written in order). On an SD
    card a sync costs milliseconds, and a job makes a dozen of them."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock, durable: bool = True) -> None:
        self.db, self.lock, self.durable = db, lock, durable

    def __enter__(self) -> None:
        self.lock.acquire()
        try:
            if self.db.in_transaction:  # never nested (the PRAGMA below cannot change inside one): a bug, said so
                raise sqlite3.OperationalError("a job store transaction is already open on this connection")
            # every transaction says how it commits, so a level is never left behind by an earlier one
            self.db.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self.db.execute("COMMIT")
            else:
                self.db.execute("ROLLBACK")
        except BaseException:
            if self.db.in_transaction:  # a COMMIT that failed (disk full) leaves it open: close it
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise
        finally:
            self.lock.release()


def where_clause(
    states: Iterable[JobState],
    exclude: Iterable[str] = (),
    skip_platforms: Iterable[str] = (),
    only_ids: Iterable[str] | None = None,
    priority: int | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (and its arguments) of the scheduler's and the API's job queries."""
    st = [state_value(s) for s in states]
    where = [f"state IN ({','.join('?' * len(st))})"]
    args: list[Any] = list(st)
    for col, values in (("id", list(exclude)), ("platform", list(skip_platforms))):
        if values:
            where.append(f"{col} NOT IN ({','.join('?' * len(values))})")
            args += values
    if only_ids is not None:
        ids = list(only_ids) or [""]
        where.append(f"id IN ({','.join('?' * len(ids))})")
        args += ids
    if priority is not None:
        where.append("priority = ?")
        args.append(priority)
    return " AND ".join(where), args


def state_value(s: JobState | str) -> str:
    # JobState(...) is slow (an enum lookup), and the states are mostly given as JobState already
    return s.value if isinstance(s, JobState) else JobState(s).value
