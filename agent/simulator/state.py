"""What the simulator remembers: tasks on a simulated GPU pool, their outputs, the record (files.py: the files).

Time drives everything. A task gets a start and an end when it is accepted (first come, first served over
`workers` slots), and its status at any moment is computed from the clock, so no thread runs per task.
Cancelling a task or changing `workers` re-plans the tasks still waiting. Output files are rendered the first
time someone looks at a finished task (a poll, or the sync handler that waited for it), once, under the task's
own lock, so heavy Pillow work never holds the board lock.
"""

from __future__ import annotations

import collections
import hashlib
import heapq
import itertools
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.simulator import imaging, inbox
from agent.simulator.config import SimConfig
from agent.simulator.files import FileStore, StoredFile

HUGE_BYTES = 3 * 1024 * 1024 + 64 * 1024  # `huge_output`: every output file is at least this large
MAX_REQUESTS = 10_000  # the request log keeps the newest ones


@dataclass(eq=False)  # identity: tasks are compared and looked up as objects
class Task:
    seq: int
    platform: str  # "easyai" | "haiyi"
    endpoint: str  # images.edits, images.generations, videos.generations, ai.generations, apps.run, ...
    family: str  # id namespace: "easyai", "easyai.sync", "haiyi.workflow", "haiyi.generate"
    task_id: str  # canonical id as a string
    wire_id: int | str  # the id as sent to the client (an int, or a string under `string_task_ids`)
    prompt: str
    effect: str
    render: str  # "edit" | "t2i" | "video"
    submitted: float
    duration: float
    fails: bool
    photo: bytes | None = None  # dropped once outputs are rendered
    last_frame: bytes | None = None
    mask: bytes | None = None
    image_sha256: str | None = None
    n: int = 1
    long_edge: int | None = None  # edits: target long edge; None = keep the upload's size
    size: tuple[int, int] = (1024, 1024)  # text-to-image size
    frames: int = 12
    caption: bool = False  # Haiyi apps.run "caption" apps: a text output next to the picture
    start: float = 0.0
    end: float = 0.0
    cancelled_at: float | None = None
    outputs: list[StoredFile] | None = None
    error: str | None = None
    polls: int = 0
    reply_dropped: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def phase(self, now: float) -> tuple[str, float]:
        """("queued" | "running" | "success" | "failed" | "cancelled", fraction of the run done)."""
        if self.cancelled_at is not None:
            return "cancelled", 0.0
        if now < self.start:
            return "queued", 0.0
        if now < self.end:
            return "running", (now - self.start) / max(1e-9, self.end - self.start)
        return ("failed" if self.fails else "success"), 1.0

    def remaining(self, now: float) -> float:
        return max(0.0, self.end - now) if self.cancelled_at is None else 0.0


class Board:
    """Tasks, the GPU plan, the record, and the stored files (``files``). All public methods are thread-safe."""

    def __init__(self, workdir: Path, seed: int | None) -> None:
        self.workdir = workdir
        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)  # notified whenever the plan changes
        self._rng = random.Random(seed)
        self._seq = itertools.count(1)
        self._haiyi_ids = itertools.count(230)
        self._generate_ids = itertools.count(24317)
        self._tasks: dict[tuple[str, str], Task] = {}
        self._order: list[Task] = []  # every accepted task, for tasks() and counts()
        self._active: list[Task] = []  # the ones that may still wait or run (pruned on every plan)
        self.files = FileStore(workdir)
        self._record: list[dict[str, Any]] = []
        self._requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_REQUESTS)
        self._received: collections.deque[dict[str, Any]] = collections.deque(maxlen=inbox.MAX_ENTRIES)
        self.rejected: set[str] = set()  # EasyAI task ids dropped at a poll (`reject_polls`)

    # ------------------------------------------------------------------------------------------- random

    def random(self) -> float:
        with self._lock:
            return self._rng.random()

    def choice(self, seq: tuple[str, ...] | list[str]) -> str:
        with self._lock:
            return self._rng.choice(list(seq))

    def roll(self, rate: float) -> bool:
        """True with probability `rate` (no draw at all when rate is 0, so seeded runs stay comparable)."""
        return rate > 0 and self.random() < rate

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self._rng.seed(seed)

    # ------------------------------------------------------------------------------------------- tasks

    def waiting(self, now: float) -> int:
        with self._lock:
            return sum(1 for t in self._active if t.cancelled_at is None and t.start > now)

    def new_task(
        self,
        cfg: SimConfig,
        *,
        platform: str,
        endpoint: str,
        family: str,
        prompt: str,
        effect: str,
        render: str,
        photo: bytes | None = None,
        **extra: Any,
    ) -> Task:
        """Build (not yet schedule) a task: id, seeded duration, FAIL / SLOW from the prompt."""
        now = time.time()
        with self._lock:
            jitter = 1.0 + self._rng.uniform(-0.1, 0.1)
            if family == "easyai" or family == "easyai.sync":
                task_id = f"{int(now) & 0xFFFFFFFF:08x}{self._rng.getrandbits(64):016x}"
            elif family == "haiyi.workflow":
                task_id = str(next(self._haiyi_ids))
            else:
                task_id = str(next(self._generate_ids))
            seq = next(self._seq)
        fails = "FAIL" in (prompt or "")
        duration = cfg.latency * jitter * (30.0 if "SLOW" in (prompt or "") else 1.0) * (0.5 if fails else 1.0)
        wire_id: int | str = task_id
        if family.startswith("haiyi"):
            wire_id = f"t-{task_id}" if "string_task_ids" in cfg.quirks else int(task_id)
        return Task(
            seq=seq,
            platform=platform,
            endpoint=endpoint,
            family=family,
            task_id=task_id,
            wire_id=wire_id,
            prompt=prompt or "",
            effect=effect,
            render=render,
            submitted=now,
            duration=duration,
            fails=fails,
            photo=photo,
            image_sha256=hashlib.sha256(photo).hexdigest() if photo is not None else None,
            error=f"simulated failure: the prompt contains FAIL ({endpoint})" if fails else None,
            **extra,
        )

    def accept(
        self, task: Task, cfg: SimConfig, *, reply_dropped: bool = False, queue_limit: int | None = None
    ) -> int | None:
        """Schedule `task` and record it. Returns its queue position (0 = runs now), or None when
        `queue_limit` is given and the task would have to wait behind that many others (not accepted)."""
        with self._lock:
            now = time.time()
            task.submitted = now
            self._plan(now, cfg.workers, extra=task)
            position = self._position(task, now)
            if queue_limit is not None and position > queue_limit:
                self._plan(now, cfg.workers)  # forget it
                return None
            self._tasks[(task.family, task.task_id)] = task
            self._order.append(task)
            self._active.append(task)
            task.reply_dropped = reply_dropped
            self._record.append(
                {
                    "platform": task.platform,
                    "endpoint": task.endpoint,
                    "task_id": task.wire_id,
                    "image_sha256": task.image_sha256,
                    "ts": now,
                    "reply_dropped": reply_dropped,
                }
            )
            self.changed.notify_all()
            return position

    def get(self, family: str, task_id: str) -> Task | None:
        tid = str(task_id).strip()
        if tid.startswith("t-"):
            tid = tid[2:]
        with self._lock:
            return self._tasks.get((family, tid))

    def cancel(self, task: Task, cfg: SimConfig) -> bool:
        """Cancel a waiting or running task; False when it had already finished."""
        with self._lock:
            now = time.time()
            state, _ = task.phase(now)
            if state == "cancelled":
                return True
            if state in ("success", "failed"):
                return False
            task.cancelled_at = now
            task.photo = task.last_frame = task.mask = None
            self._plan(now, cfg.workers)
            self.changed.notify_all()
            return True

    def replan(self, workers: int) -> None:
        with self._lock:
            self._plan(time.time(), workers)
            self.changed.notify_all()

    def position(self, task: Task, now: float) -> int:
        with self._lock:
            return self._position(task, now)

    def _position(self, task: Task, now: float) -> int:
        """1-based place among the waiting tasks; 0 when it runs (or ran) already."""
        if task.cancelled_at is not None or task.start <= now:
            return 0
        key = (task.start, task.seq)
        waiting = [t for t in self._active if t.cancelled_at is None and t.start > now]
        if task not in waiting:
            waiting.append(task)  # a task being accepted is not in _order yet
        return sum(1 for t in waiting if (t.start, t.seq) <= key)

    def _plan(self, now: float, workers: int, extra: Task | None = None) -> None:
        """First come, first served over `workers` slots. Running tasks keep their times; waiting ones
        (and `extra`, a task being accepted) are laid out again in arrival order."""
        self._active = [t for t in self._active if t.cancelled_at is None and t.end > now]
        running = [t for t in self._active if t.start <= now]
        waiting = [t for t in self._active if t.start > now]
        if extra is not None:
            waiting.append(extra)
        waiting.sort(key=lambda t: t.seq)
        ends = sorted(t.end for t in running)
        if len(ends) >= workers:
            slots = ends[len(ends) - workers :]  # more running than slots: the next starts as they drain
        else:
            slots = ends + [now] * (workers - len(ends))
        heapq.heapify(slots)
        for t in waiting:
            free = heapq.heappop(slots)
            t.start = max(now, free)
            t.end = t.start + t.duration
            heapq.heappush(slots, t.end)

    def wait_until_done(self, task: Task, stopping: threading.Event) -> bool:
        """Block a sync handler until its task's run is over; False if the server is stopping."""
        with self._lock:
            while True:
                if stopping.is_set():
                    return False
                left = task.end - time.time()
                if task.cancelled_at is not None or left <= 0:
                    return True
                self.changed.wait(timeout=min(left, 1.0))

    def tasks(self) -> list[dict[str, Any]]:
        now = time.time()
        with self._lock:
            out = []
            for t in self._order:
                state, frac = t.phase(now)
                out.append(
                    {
                        "platform": t.platform,
                        "endpoint": t.endpoint,
                        "task_id": t.wire_id,
                        "state": state,
                        "progress": int(frac * 100),
                        "queue": self._position(t, now),
                        "prompt": t.prompt,
                        "effect": t.effect,
                        "submitted": t.submitted,
                        "start": t.start,
                        "end": t.end,
                        "cancelled_at": t.cancelled_at,
                        "image_sha256": t.image_sha256,
                        "outputs": [f.name for f in t.outputs or []],
                        "reply_dropped": t.reply_dropped,
                    }
                )
            return out

    def record(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._record]

    def note_request(self, method: str, path: str) -> None:
        """Remember one platform API request (method and path, never headers or query: they may hold secrets)."""
        with self._lock:
            self._requests.append({"method": method, "path": path, "ts": time.time()})

    def receive(self, endpoint: str, **info: Any) -> None:
        """Remember what one request brought (see inbox.py)."""
        with self._lock:
            self._received.append(inbox.entry(endpoint, **info))

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._received]

    def reject_at_poll(self, task: Task, limit: int) -> bool:
        """`reject_polls`: drop this waiting or running task ("rejected") while fewer than `limit` were dropped."""
        with self._lock:
            if task.task_id in self.rejected:
                return True
            if len(self.rejected) >= limit or task.phase(time.time())[0] not in ("queued", "running"):
                return False
            self.rejected.add(task.task_id)
            task.cancelled_at = time.time()
            task.photo = task.last_frame = task.mask = None
            self.changed.notify_all()
            return True

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def counts(self) -> dict[str, int]:
        now = time.time()
        with self._lock:
            states = [t.phase(now)[0] for t in self._order]
        return {s: states.count(s) for s in ("queued", "running", "success", "failed", "cancelled")} | {
            "tasks": len(states)
        }

    # ------------------------------------------------------------------------------------------- rendering

    def outputs(self, task: Task, cfg: SimConfig) -> list[StoredFile]:
        """The finished task's output files, rendered on first use (under the task's own lock)."""
        with task.lock:
            if task.outputs is None:
                try:
                    task.outputs = self._render(task, cfg)
                except Exception as e:  # a photo that passed the header check but will not decode, a full disk
                    task.fails, task.error, task.outputs = True, f"render failed: {e}", []
                task.photo = task.last_frame = task.mask = None  # keep memory flat under load
            return task.outputs

    def _render(self, task: Task, cfg: SimConfig) -> list[StoredFile]:
        prefix = time.strftime("HAIYI_%Y%m%d%H%M%S", time.gmtime(task.end)) if task.platform == "haiyi" else "ComfyUI"
        pad = HUGE_BYTES if "huge_output" in cfg.quirks else 0
        if task.render == "audio":
            data = imaging.tone_wav(task.prompt)
            wav = self.files.store(
                data, ext=".wav", content_type="audio/wav", kind="output", prefix=prefix, born=task.end
            )
            return [wav]
        if task.render == "video":
            first = (
                imaging.open_photo(task.photo, imaging.VIDEO_EDGE)
                if task.photo
                else imaging.text_to_image(task.prompt, (imaging.VIDEO_EDGE, imaging.VIDEO_EDGE * 9 // 16), task.effect)
            )
            first = imaging.apply_effect(first, task.effect) if task.photo else first
            last = imaging.open_photo(task.last_frame, imaging.VIDEO_EDGE) if task.last_frame else None
            last = imaging.apply_effect(last, task.effect) if last is not None else None
            target = self.workdir / secrets.token_hex(12)
            ctype, ext = imaging.write_video(target, first, last, task.frames)
            path = target.with_suffix(ext)
            if pad:
                with path.open("ab") as fh:  # trailing bytes after the last box/trailer: players ignore them
                    fh.write(b"\0" * pad)
            return [self.files.adopt(path, content_type=ctype, kind="output", prefix=prefix, born=task.end)]
        if task.render == "edit" and task.photo is not None:
            photo = imaging.open_photo(task.photo, task.long_edge)
            images = imaging.edit(photo, task.effect, task.n, task.long_edge, task.mask)
        else:
            images = [imaging.text_to_image(task.prompt, task.size, task.effect, k) for k in range(task.n)]
        return [
            self.files.store(
                imaging.encode_png(im, pad),
                ext=".png",
                content_type="image/png",
                kind="output",
                prefix=prefix,
                born=task.end,
            )
            for im in images
        ]
