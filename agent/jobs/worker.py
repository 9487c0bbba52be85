"""The queue worker: the only thing that moves a job from state to state after capture.

    captured ──submit──▶ submitting ──task id──▶ submitted ──poll…──▶ downloading ──fetch──▶ done
        ▲                    │ (sync endpoint: outputs at once) ───────────▲
        └─ transient error ──┘            any permanent error ──▶ failed;  deadline ──▶ expired

Every transition is written to the store first (a compare-and-set, so a cancel from the CLI or the API wins
cleanly). One scheduler thread picks due jobs; a small pool runs their steps. Polling a submitted task holds
no thread: the job just gets a new ``next_attempt_at``.

Fairness and bounds: at most ``queue.max_in_flight`` jobs are on the platforms at once; a job a guest is waiting
for (priority 1) always goes before the backlog (priority 0, jobs that already met a transient error), and one
slot is kept free of backlog so a fresh trigger never waits behind a draining queue.

At-least-once window: a job is marked ``submitting`` right before the submit request and ``submitted`` (with
the task id) right after the reply. A crash between the two cannot know whether the platform created a task,
so the job is submitted again on restart (``resubmits`` counts it, the history says why). Nothing else
ever submits a job twice.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from agent.config import Config
from agent.jobs.model import Job, JobState
from agent.jobs.retry import WAIT_NETWORK, WAIT_POLL, RetryPolicy
from agent.jobs.store import JobStore
from agent.platforms.base import (
    AuthError,
    PermanentError,
    PlatformClient,
    PlatformError,
    RemoteOutput,
    TaskStatus,
    TransientError,
)
from agent.results import ResultLayout
from agent.steps.fetch import fetch_outputs
from agent.steps.submit import build_request

log = logging.getLogger(__name__)

S = JobState
IN_FLIGHT = (S.SUBMITTING, S.SUBMITTED)  # on the platform; a download no longer occupies it
NETWORK_KINDS = ("network", "timeout")


class Worker:
    def __init__(
        self,
        store: JobStore,
        clients: dict[str, PlatformClient],
        config: Config,
        layout: ResultLayout,
        on_change: Callable[..., None],
        on_alarm: Callable[[str, str], None],
        url_for: Callable[[str, str], str],
        retry: RetryPolicy | None = None,
        scrub: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.store = store
        self.clients = clients
        self.config = config
        self.layout = layout
        self.on_change = on_change  # on_change(job, progress_only=False): the core turns it into events
        self.on_alarm = on_alarm
        self.url_for = url_for  # (job_id, file name) -> URL served by the local HTTP API
        self.scrub = scrub  # masks secrets in every reason this worker records
        self.retry = retry or RetryPolicy(config.queue.retry_base_s, config.queue.retry_cap_s)
        q = config.queue
        self.max_in_flight = q.max_in_flight
        self._pool = ThreadPoolExecutor(max_workers=q.max_in_flight + 2, thread_name_prefix="job")
        self._pool_size = q.max_in_flight + 2
        self._running: set[str] = set()
        self.own_jobs: set[str] | None = None  # when set, only these jobs are worked on (`edge-agent once`)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.offline: dict[str, float] = {}  # platform -> when to probe next
        self._probing: set[str] = set()
        self._last_sweep = 0.0

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._running)

    # ------------------------------------------------------------------------------------------ scheduling

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self._tick(time.time())
            except Exception:  # the scheduler must outlive any bug in one step
                log.exception("worker tick failed")
                delay = 1.0
            self._wake.wait(delay)
            self._wake.clear()

    def _tick(self, now: float) -> float:
        if now - self._last_sweep >= 1.0:
            self._last_sweep = now
            self._expire_overdue(now)
        self._probe_offline(now)
        with self._lock:
            free = self._pool_size - len(self._running)
            running = set(self._running)
        if free > 0:
            for job in self._pick(now, free, running):
                with self._lock:
                    self._running.add(job.id)
                self._pool.submit(self._run, job)
        nxt = self.store.next_due_time((S.CAPTURED, S.SUBMITTED, S.DOWNLOADING))
        wait = 1.0 if nxt is None else min(1.0, max(0.02, nxt - time.time()))
        return wait

    def _pick(self, now: float, free: int, running: set[str]) -> list[Job]:
        picked: list[Job] = []
        offline = set(self.offline)
        # tasks already on a platform first: polls and downloads need no new slot
        for job in self.store.due(now, (S.SUBMITTED, S.DOWNLOADING), limit=free + len(running), exclude=running):
            if len(picked) >= free:
                return picked
            if job.platform not in offline and self._mine(job):
                picked.append(job)
        in_flight = self.store.count_in(IN_FLIGHT)
        for job in self.store.due(now, (S.CAPTURED,), limit=free + 16, exclude=running):
            if len(picked) >= free:
                break
            if job.platform in offline or not self._mine(job):
                continue
            # one slot stays free of backlog, for the guest in front of the booth
            limit = self.max_in_flight if job.priority > 0 or self.max_in_flight == 1 else self.max_in_flight - 1
            if in_flight >= limit:
                if job.priority > 0:
                    break  # nothing lower in the order may overtake it
                continue
            picked.append(job)
            in_flight += 1
        return picked

    def _mine(self, job: Job) -> bool:
        return self.own_jobs is None or job.id in self.own_jobs

    def _run(self, job: Job) -> None:
        try:
            if job.state == S.CAPTURED:
                self._submit(job)
            elif job.state == S.SUBMITTED:
                self._poll(job)
            elif job.state == S.DOWNLOADING:
                self._fetch(job)
        except Exception as e:  # a bug must fail one job with a reason, never kill the worker or lose the job
            log.exception("job %s: unexpected error in state %s", job.id, job.state.value)
            self._fail(job.id, (job.state, S.SUBMITTING), f"internal error: {type(e).__name__}: {e}")
        finally:
            with self._lock:
                self._running.discard(job.id)
            self._wake.set()

    # ------------------------------------------------------------------------------------------ steps

    def _profile_of(self, job: Job) -> tuple[Any, PlatformClient] | None:
        """The job's profile and client, or None after failing the job when the config no longer has it."""
        try:
            profile = self.config.profile(job.profile)
            return profile, self.clients[profile.platform]
        except KeyError:
            self._fail(job.id, (job.state,), f"profile {job.profile!r} is no longer in the config")
            return None

    def _submit(self, job: Job) -> None:
        if (found := self._profile_of(job)) is None:
            return
        profile, client = found
        try:
            req = build_request(job, profile, self.config)
        except PermanentError as e:
            self._fail(job.id, (S.CAPTURED,), str(e))
            return
        except Exception as e:
            self._fail(job.id, (S.CAPTURED,), f"could not prepare the photo: {e}")
            return
        j = self._move(job.id, (S.CAPTURED,), S.SUBMITTING, attempts=job.attempts + 1)
        if j is None:
            return  # cancelled meanwhile
        try:
            res = client.submit(req)
        except TransientError as e:
            self._transient(j, S.SUBMITTING, S.CAPTURED, e)
            return
        except PlatformError as e:
            self._permanent(j, S.SUBMITTING, e)
            return
        self._platform_ok(profile.platform)
        now = time.time()
        if res.task_id is not None:
            moved = self._move(
                j.id, (S.SUBMITTING,), S.SUBMITTED, note=f"task {res.task_id}", remote_task_id=str(res.task_id),
                submitted_at=now, next_attempt_at=now + self._poll_interval(profile.platform), failures=0,
                wait_kind=WAIT_POLL, error=None,
            )
            if moved is None:  # cancelled while the request was on the wire: do not leave the task running
                self._cancel_remote(client, str(res.task_id), profile)
            return
        status = res.status or TaskStatus("failed", message="the platform answered without a task or a result")
        j = self._move(j.id, (S.SUBMITTING,), S.SUBMITTED, submitted_at=now, failures=0, error=None)
        if j is not None:
            self._apply_status(j, status)

    def _poll(self, job: Job) -> None:
        if (found := self._profile_of(job)) is None:
            return
        profile, client = found
        try:
            status = client.poll(job.remote_task_id or "", profile)
        except TransientError as e:
            self._transient(job, S.SUBMITTED, S.SUBMITTED, e)
            return
        except PlatformError as e:
            self._permanent(job, S.SUBMITTED, e)
            return
        self._platform_ok(profile.platform)
        self._apply_status(job, status)

    def _apply_status(self, job: Job, st: TaskStatus) -> None:
        now = time.time()
        note = "; ".join(st.warnings)[:500] or None
        if st.state == "success":
            self._move(job.id, (S.SUBMITTED,), S.DOWNLOADING, note=note, progress=100, failures=0, wait_kind=None,
                       remote_outputs=[o.as_dict() for o in st.outputs], next_attempt_at=now, error=None)
        elif st.state == "failed":
            self._fail(job.id, (S.SUBMITTED,), f"the platform failed the task: {st.message or 'no reason given'}")
        elif st.state == "cancelled":
            self._move(job.id, (S.SUBMITTED,), S.CANCELLED, error="cancelled on the platform")
        else:
            changed = st.progress is not None and st.progress != job.progress
            j = self.store.update(
                job.id, (S.SUBMITTED,), progress=st.progress if st.progress is not None else job.progress,
                next_attempt_at=now + self._poll_interval(job.platform or ""), failures=0, wait_kind=WAIT_POLL,
                error=None,
            )
            if j is not None and changed:
                self.on_change(j, progress_only=True)

    def _fetch(self, job: Job) -> None:
        if (found := self._profile_of(job)) is None:
            return
        profile, client = found
        job_dir = Path(job.result_dir or Path(job.capture_path).parent)
        remote = [RemoteOutput.from_dict(d) for d in job.remote_outputs]
        try:
            outputs = fetch_outputs(client, remote, job_dir, lambda name: self.url_for(job.id, name))
        except TransientError as e:
            self._transient(job, S.DOWNLOADING, S.DOWNLOADING, e)
            return
        except PlatformError as e:
            self._permanent(job, S.DOWNLOADING, e, prefix="could not fetch the result: ")
            return
        except OSError as e:
            self._fail(job.id, (S.DOWNLOADING,), f"could not store the result: {e}")
            return
        self._platform_ok(profile.platform)
        self._move(job.id, (S.DOWNLOADING,), S.DONE, outputs=outputs, progress=100, error=None, wait_kind=None)

    # ------------------------------------------------------------------------------------------ outcomes

    def _move(self, job_id: str, frm: tuple[JobState, ...], to: JobState, note: str | None = None,
              **changes: object) -> Job | None:
        if note:
            note = self.scrub(note)
        if isinstance(changes.get("error"), str):
            changes["error"] = self.scrub(changes["error"])  # type: ignore[arg-type]
        j = self.store.transition(job_id, frm, to, note=note, **changes)
        if j is not None:
            if to.final or to == S.SUBMITTED and j.remote_task_id:  # job.json can rebuild a lost queue
                try:
                    self.layout.write_job_json(j)
                except OSError:
                    log.exception("job %s: could not write job.json", job_id)
            self.on_change(j)
        return j

    def _fail(self, job_id: str, frm: tuple[JobState, ...], reason: str) -> Job | None:
        log.warning("job %s failed: %s", job_id, reason)
        return self._move(job_id, frm, S.FAILED, note=reason, error=reason, wait_kind=None)

    def _permanent(self, job: Job, frm: JobState, e: PlatformError, prefix: str = "") -> None:
        self._fail(job.id, (frm,), prefix + str(e))
        if isinstance(e, AuthError):
            self.on_alarm("auth", f"platform {job.platform!r} refused the API key: {e}")

    def _transient(self, job: Job, frm: JobState, back_to: JobState, e: TransientError) -> None:
        failures = job.failures + 1
        delay = self.retry.delay(failures, e.retry_after)
        kind = self.retry.wait_kind(e.kind, e.retry_after)
        self._move(
            job.id, (frm,), back_to, note=f"will retry in {delay:.1f}s: {e}", failures=failures,
            next_attempt_at=time.time() + delay, wait_kind=kind, error=str(e),
            priority=0 if back_to == S.CAPTURED else job.priority,
        )
        if e.kind in NETWORK_KINDS and job.platform:
            self._platform_down(job.platform, str(e))

    # ------------------------------------------------------------------------------------------ deadlines

    def _expire_overdue(self, now: float) -> None:
        deadline = self.config.queue.task_deadline_s
        for job in self.store.list((S.SUBMITTED,), limit=1000):
            if job.submitted_at is not None and now - job.submitted_at > deadline and job.id not in self._running:
                reason = (f"no answer from the platform within task_deadline_s={deadline}s "
                          f"(task {job.remote_task_id}); `edge-agent queue retry` submits it again")
                j = self._move(job.id, (S.SUBMITTED,), S.EXPIRED, note=reason, error=reason, wait_kind=None)
                if j is not None and j.remote_task_id:
                    try:
                        profile = self.config.profile(j.profile)
                        self._pool.submit(self._cancel_remote, self.clients[profile.platform], j.remote_task_id,
                                          profile)
                    except (KeyError, RuntimeError):
                        pass

    def _cancel_remote(self, client: PlatformClient, task_id: str, profile: object) -> None:
        if not getattr(client, "supports_cancel", False):
            return
        try:
            client.cancel(task_id, profile)  # type: ignore[arg-type]
        except PlatformError as e:
            log.info("could not cancel task %s: %s", task_id, e)

    # ------------------------------------------------------------------------------------------ connectivity

    def _poll_interval(self, platform: str) -> float:
        p = self.config.platforms.get(platform)
        return p.poll_interval_s if p else 2.0

    def _platform_down(self, name: str, reason: str) -> None:
        with self._lock:
            if name in self.offline:
                return
            self.offline[name] = time.time() + self.config.queue.probe_interval_s
        log.warning("platform %s unreachable (%s); jobs wait and the platform is probed", name, reason)
        self.on_alarm("offline", f"platform {name!r} unreachable: {reason}")

    def _platform_ok(self, name: str) -> None:
        with self._lock:
            was_down = self.offline.pop(name, None) is not None
        if was_down:
            n = self.store.wake(name, WAIT_NETWORK)
            log.info("platform %s reachable again; %d waiting jobs resume now", name, n)
            self.on_alarm("online", f"platform {name!r} reachable again")
            self._wake.set()

    def _probe_offline(self, now: float) -> None:
        with self._lock:
            due = [n for n, t in self.offline.items() if t <= now and n not in self._probing]
            self._probing.update(due)
        for name in due:
            self._pool.submit(self._probe, name)

    def _probe(self, name: str) -> None:
        try:
            self.clients[name].probe()
        except PlatformError:
            with self._lock:
                if name in self.offline:
                    self.offline[name] = time.time() + self.config.queue.probe_interval_s
            return
        finally:
            with self._lock:
                self._probing.discard(name)
        self._platform_ok(name)
