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
NETWORK_KINDS = ("network",)  # no answer at all: the platform is unreachable
MAX_SUBMIT_TIMEOUTS = 3  # a submit answered too slowly may each time have started a (paid) task
STALE_SUBMIT_MARGIN_S = 60.0  # a `submitting` row older than read_timeout_s + this has lost its request


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
        in_flight = self.store.count_by_platform(IN_FLIGHT)
        if free > 0:
            picked = self._pick(now, free, running, in_flight)  # counts the picked ones into in_flight
            for job in picked:
                with self._lock:
                    self._running.add(job.id)
                    running.add(job.id)
                self._pool.submit(self._run, job)
            free -= len(picked)
        # sleep until the next job that could be picked is due. Jobs held back by an in-flight limit are left
        # out (a running step that ends wakes this loop), so they never shorten the sleep nor delay a poll.
        offline = set(self.offline)
        times = [self.store.next_due_time((S.SUBMITTED, S.DOWNLOADING), exclude=running, skip_platforms=offline,
                                          only_ids=self.own_jobs)]
        for priority, limit in ((1, self.max_in_flight), (0, self._backlog_limit)):
            full = offline | {p for p, n in in_flight.items() if n >= limit}
            times.append(self.store.next_due_time((S.CAPTURED,), exclude=running, skip_platforms=full,
                                                  only_ids=self.own_jobs, priority=priority))
        pending = [t for t in times if t is not None]
        now = time.time()
        nxt = min(pending) if pending else None
        wait = 1.0 if nxt is None else (1.0 if nxt <= now and free <= 0 else min(1.0, max(0.005, nxt - now)))
        with self._lock:
            probes = [t for n, t in self.offline.items() if n not in self._probing]
        if probes:
            wait = min(wait, max(0.02, min(probes) - now))
        return wait

    @property
    def _backlog_limit(self) -> int:
        return self.max_in_flight - 1 if self.max_in_flight > 1 else 1

    def _pick(self, now: float, free: int, running: set[str], in_flight: dict[str, int]) -> list[Job]:
        offline = set(self.offline)
        only = self.own_jobs
        # tasks already on a platform first: polls and downloads need no new slot
        picked = self.store.due(now, (S.SUBMITTED, S.DOWNLOADING), limit=free, exclude=running,
                                skip_platforms=offline, only_ids=only)
        free -= len(picked)
        # guests first, then the backlog, which may use all but one slot of a platform (kept for the next guest)
        for priority, limit in ((1, self.max_in_flight), (0, self._backlog_limit)):
            if free <= 0:
                break
            full = offline | {p for p, n in in_flight.items() if n >= limit}
            taken = running | {j.id for j in picked}
            for job in self.store.due(now, (S.CAPTURED,), limit=free, exclude=taken, skip_platforms=full,
                                      only_ids=only, priority=priority):
                if in_flight.get(job.platform, 0) >= limit:
                    continue  # filled by an earlier job of this round
                picked.append(job)
                in_flight[job.platform or ""] = in_flight.get(job.platform, 0) + 1
                free -= 1
        return picked

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
            if e.kind == "timeout" and j.attempts >= MAX_SUBMIT_TIMEOUTS:
                read_s = self.config.platforms[profile.platform].read_timeout_s
                self._fail(j.id, (S.SUBMITTING,), (
                    f"the platform did not answer within read_timeout_s={read_s:g}s, {j.attempts} times; each try "
                    f"may have started a task, so it is not sent again (raise platforms.{profile.platform}."
                    "read_timeout_s, then `edge-agent queue retry`)"))
                return
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
            status = client.poll(job.remote_task_id or "", profile.endpoint)
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
        except TransientError as e:  # the result host is often not the platform: never mark it offline
            self._transient(job, S.DOWNLOADING, S.DOWNLOADING, e, mark_offline=False)
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

    def _transient(self, job: Job, frm: JobState, back_to: JobState, e: TransientError,
                   mark_offline: bool = True) -> None:
        failures = job.failures + 1
        delay = self.retry.delay(failures, e.retry_after)
        kind = self.retry.wait_kind(e.kind, e.retry_after)
        self._move(
            job.id, (frm,), back_to, note=f"will retry in {delay:.1f}s: {e}", failures=failures,
            next_attempt_at=time.time() + delay, wait_kind=kind, error=str(e),
            priority=0 if back_to == S.CAPTURED else job.priority,
        )
        if mark_offline and e.kind in NETWORK_KINDS and job.platform:
            self._platform_down(job.platform, str(e))

    # ------------------------------------------------------------------------------------------ deadlines

    def _expire_overdue(self, now: float) -> None:
        """Deadlines, and submits that lost their request (e.g. a store write failed, or `once` was killed)."""
        deadline = self.config.queue.task_deadline_s
        with self._lock:
            running = set(self._running)
        for job in self.store.list((S.SUBMITTED, S.DOWNLOADING, S.SUBMITTING), limit=10_000):
            if job.id in running or (self.own_jobs is not None and job.id not in self.own_jobs):
                continue
            if job.state == S.SUBMITTING:
                plat = self.config.platforms.get(job.platform or "")
                limit = (plat.read_timeout_s if plat else 60.0) + STALE_SUBMIT_MARGIN_S
                if now - job.updated_at > limit:
                    self._move(job.id, (S.SUBMITTING,), S.CAPTURED, resubmits=job.resubmits + 1, next_attempt_at=0.0,
                               note="the submit request was lost: submitting again (at-least-once window)")
                continue
            started = job.submitted_at or job.created_at
            if now - started <= deadline:
                continue
            what = "no answer from the platform" if job.state == S.SUBMITTED else "the result could not be fetched"
            reason = (f"{what} within task_deadline_s={deadline:g}s (task {job.remote_task_id}); "
                      "`edge-agent queue retry` submits it again")
            j = self._move(job.id, (job.state,), S.EXPIRED, note=reason, error=reason, wait_kind=None)
            if j is not None and j.remote_task_id and job.state == S.SUBMITTED:
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
            client.cancel(task_id, profile.endpoint)  # type: ignore[attr-defined]
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
        demoted = self.store.demote(name)  # whoever presses the button once it is back goes first
        log.warning("platform %s unreachable (%s); %d photo(s) wait and the platform is probed", name, reason,
                    demoted)
        self.on_alarm("offline", f"platform {name!r} unreachable: {reason}")

    def _platform_ok(self, name: str) -> None:
        with self._lock:
            was_down = self.offline.pop(name, None) is not None
        if was_down:
            self.store.wake(name, WAIT_NETWORK)
            waiting = self.store.count_by_platform((S.CAPTURED, S.SUBMITTED, S.DOWNLOADING)).get(name, 0)
            log.info("platform %s reachable again; %d waiting job(s) resume now", name, waiting)
            self.on_alarm("online", f"platform {name!r} reachable again")
            self._wake.set()

    def _probe_offline(self, now: float) -> None:
        with self._lock:
            due = [n for n, t in self.offline.items() if t <= now and n not in self._probing]
            self._probing.update(due)
        for name in due:
            self._pool.submit(self._probe, name)

    def _probe(self, name: str) -> None:
        client = self.clients.get(name)
        if client is None:  # a platform no longer in the config: nothing to wait for
            with self._lock:
                self.offline.pop(name, None)
                self._probing.discard(name)
            return
        try:
            client.probe()
        except PlatformError:
            with self._lock:
                if name in self.offline:
                    self.offline[name] = time.time() + self.config.queue.probe_interval_s
            return
        finally:
            with self._lock:
                self._probing.discard(name)
        self._platform_ok(name)
