"""`SimConfig`: every knob of the simulator, with its default next to it.

The config is an immutable value. `Simulator.configure(**fields)` swaps in a new one built by
`SimConfig.replace`, so a request handler reads one consistent snapshot from start to finish.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# What `failure_kinds` may hold; see the module docstring of `agent.simulator` for what each one sends.
FAILURE_KINDS: tuple[str, ...] = ("500", "502html", "504html", "503", "429", "drop", "empty", "code")

# What `quirks` may hold; each one reshapes replies the way some real deployment does.
QUIRKS: frozenset[str] = frozenset(
    {
        "wrap_data",  # EasyAI: every JSON reply wrapped once more as {"data": {...}}
        "comfy_view_urls",  # EasyAI: outputs are relative /view?filename=X&subfolder=&type=output links
        "text_output",  # EasyAI: async results are type "text" with strings in `output`
        "string_task_ids",  # Haiyi: task ids are strings ("t-230") instead of integers
        "node_warnings",  # Haiyi: outputs mix media with warning/error strings from other nodes
        "bare_filenames",  # Haiyi: outputs are bare file names, fetched via /api/view?type=output&filename=
        "progress_missing",  # no progress field at all
        "no_time_remained",  # EasyAI: results carry no time_remained (the client must judge the end itself)
        "progress_garbage",  # progress present but not a number ("94%", null, {"total_progress": "n/a"})
        "inactive_cluster",  # Haiyi: the cluster list starts with an inactive cluster (0/0 nodes)
        "octet_stream",  # downloads served as application/octet-stream
        "html_download",  # downloads answer HTTP 200 text/html "link expired"
        "huge_output",  # output files padded to more than 3 MB
        "expire_fast",  # signed output URLs expire `expire_fast_s` after the task finishes
        "no_file_upload",  # Haiyi: POST /openapi/v1/file/upload does not exist (HTTP 404), as on some servers
    }
)


@dataclass(frozen=True)
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port on the first start(); later starts re-bind the same one
    api_keys: tuple[str, ...] = ("sk-test",)  # empty = any non-empty bearer token is accepted
    latency: float = 0.5  # seconds of "GPU time" per task (with +-10 % seeded jitter)
    fail_rate: float = 0.0  # probability that an API request gets one of `failure_kinds` instead of an answer
    seed: int | None = None  # seeds failure injection, jitter and ids; None = random
    workers: int = 4  # tasks that run at once (one GPU pool serves both platforms)
    queue_limit: int | None = None  # EasyAI: at most this many tasks may wait; more are "rejected"
    retry_after_s: float = 1.0  # Retry-After sent with injected 429s
    failure_kinds: tuple[str, ...] = FAILURE_KINDS
    drop_after_accept_rate: float = 0.0  # probability that an accepted task's reply is never sent
    url_ttl_s: float = 300.0  # lifetime of signed /files/ URLs (under 1 s: honoured to the millisecond)
    expire_fast_s: float = 1.0  # lifetime of signed output URLs under the `expire_fast` quirk
    max_upload_bytes: int = 20_000_000  # larger request bodies get an HTML 413
    reject_polls: int = 0  # EasyAI: this many queued/running tasks are dropped with "rejected" at a poll
    quirks: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        # Normalise what callers commonly pass (lists from JSON, a bare string key) and refuse nonsense early.
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if isinstance(self.api_keys, str):
            put("api_keys", (self.api_keys,))
        put("api_keys", tuple(str(k) for k in self.api_keys))
        if isinstance(self.failure_kinds, str):
            put("failure_kinds", (self.failure_kinds,))
        put("failure_kinds", tuple(str(k) for k in self.failure_kinds))
        if isinstance(self.quirks, str):
            put("quirks", (self.quirks,))
        put("quirks", frozenset(str(q) for q in self.quirks))
        put("port", int(self.port))
        put("latency", float(self.latency))
        put("fail_rate", float(self.fail_rate))
        put("workers", int(self.workers))
        put("retry_after_s", float(self.retry_after_s))
        put("drop_after_accept_rate", float(self.drop_after_accept_rate))
        put("url_ttl_s", float(self.url_ttl_s))
        put("expire_fast_s", float(self.expire_fast_s))
        put("max_upload_bytes", int(self.max_upload_bytes))
        put("reject_polls", int(self.reject_polls))
        if self.queue_limit is not None:
            put("queue_limit", int(self.queue_limit))
        if self.seed is not None:
            put("seed", int(self.seed))

        unknown = self.quirks - QUIRKS
        if unknown:
            raise ValueError(f"unknown quirk(s) {sorted(unknown)}; known: {sorted(QUIRKS)}")
        bad = [k for k in self.failure_kinds if k not in FAILURE_KINDS]
        if bad:
            raise ValueError(f"unknown failure kind(s) {bad}; known: {list(FAILURE_KINDS)}")
        if self.fail_rate > 0 and not self.failure_kinds:
            raise ValueError("fail_rate > 0 needs at least one failure kind")
        for name in ("fail_rate", "drop_after_accept_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0..65535")
        if min(self.latency, self.retry_after_s, self.url_ttl_s, self.expire_fast_s) < 0:
            raise ValueError("latency, retry_after_s, url_ttl_s and expire_fast_s must be >= 0")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        if self.queue_limit is not None and self.queue_limit < 0:
            raise ValueError("queue_limit must be >= 0 or None")
        if self.max_upload_bytes < 1:
            raise ValueError("max_upload_bytes must be >= 1")

    def replace(self, **changes: Any) -> SimConfig:
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown SimConfig field(s) {unknown}; known: {sorted(names)}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able view for /_sim/config and logs (keys are counted, never shown)."""
        d = dataclasses.asdict(self)
        d["api_keys"] = len(self.api_keys)  # a count: the control routes are unauthenticated
        d["failure_kinds"] = list(self.failure_kinds)
        d["quirks"] = sorted(self.quirks)
        return d
