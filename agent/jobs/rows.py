"""How a Job is kept in SQLite: the schema (and the columns added since schema 1, added in place to an older
queue at open), and the conversion between a row and a Job (lists and dicts as JSON text)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import fields
from typing import Any

from agent.jobs.model import Job, JobState, Output

SCHEMA_VERSION = 4
HISTORY_MAX = 60

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    capture_path TEXT NOT NULL,
    platform TEXT,
    endpoint TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    remote_task_id TEXT,
    progress INTEGER,
    queue_position INTEGER,
    stage TEXT,
    step TEXT,
    eta_s REAL,
    choice TEXT,
    share_token TEXT,
    error TEXT,
    outputs TEXT NOT NULL DEFAULT '[]',
    params TEXT NOT NULL DEFAULT '{}',
    priority INTEGER NOT NULL DEFAULT 2,
    capture_bytes INTEGER NOT NULL DEFAULT 0,
    wait_kind TEXT,
    submitted_at REAL,
    finished_at REAL,
    remote_outputs TEXT NOT NULL DEFAULT '[]',
    result_dir TEXT,
    request_id TEXT,
    resubmits INTEGER NOT NULL DEFAULT 0,
    history TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs(state, next_attempt_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
CREATE INDEX IF NOT EXISTS jobs_request ON jobs(request_id) WHERE request_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# columns added after schema 1, with their SQL type: added in place to an older database at open
ADDED_COLUMNS = {
    "endpoint": "TEXT",
    "queue_position": "INTEGER",
    "capture_bytes": "INTEGER NOT NULL DEFAULT 0",
    "stage": "TEXT",
    "step": "TEXT",
    "eta_s": "REAL",
    "choice": "TEXT",
    "share_token": "TEXT",
}
# indexes on added columns: created after the columns exist (an older queue gets them at open)
ADDED_INDEXES = ("CREATE INDEX IF NOT EXISTS jobs_share ON jobs(share_token) WHERE share_token IS NOT NULL",)
JSON_FIELDS = {"outputs", "params", "remote_outputs", "history"}
COLUMNS = [f.name for f in fields(Job)]


def to_row(job: Job) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in COLUMNS:
        v = getattr(job, name)
        if name == "state":
            v = JobState(v).value
        elif name == "outputs":
            v = json.dumps([o.__dict__ if isinstance(o, Output) else o for o in v])
        elif name in JSON_FIELDS:
            v = json.dumps(v)
        row[name] = v
    return row


def from_row(row: sqlite3.Row) -> Job:
    kw: dict[str, Any] = {}
    for name in COLUMNS:
        v = row[name]
        if name == "state":
            v = JobState(v)
        elif name == "outputs":
            v = [Output(**o) for o in json.loads(v)]
        elif name in JSON_FIELDS:
            v = json.loads(v)
        kw[name] = v
    return Job(**kw)
