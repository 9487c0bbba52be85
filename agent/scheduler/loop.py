"""The scheduler: picks due jobs, runs their next step on a small pool, applies the outcome through the lifecycle.

It only schedules. What a step does lives in agent/steps/, what an error means in RetryPolicy.decide
(agent/jobs/retry.py), how a job's state may change in the lifecycle (agent/jobs/lifecycle.py), and which
platforms answer in Reachability (agent/scheduler/reachability.py).

Fairness and bounds: at most ``queue.max_in_flight`` jobs are on each platform at once (a download no longer
occupies a slot); a job a guest is waiting for (priority 1) always goes before the backlog (priority 0: jobs that
met a transient error or were taken while their platform was away), and one slot is kept free of backlog so a
fresh trigger never waits behind a draining queue. Polling a submitted task holds no thread: the job just gets a
new ``next_attempt_at``.

At-least-once window: a job is marked ``submitting`` right before the submit request and ``submitted`` (with the
task id) right after the reply. A crash between the two cannot know whether the platform created a task, so the
job is submitted again (``requeue_lost_submit``: ``resubmits`` counts it, the history says why). Nothing else ever
submits a job twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from agent import clock
from agent.jobs.actions import cancel_remote
from agent.jobs.eta import EtaModel
from agent.jobs.lifecycle import Lifecycle
from agent.jobs.model import PRIORITY_BACKLOG, PRIORITY_GUEST, PRIORITY_REMOTE, Job, JobState
from agent.jobs.retry import WAIT_NETWORK, Phase, RetryPolicy
from agent.jobs.store import JobStore
from agent.platforms.base import PlatformClient
from agent.scheduler.diskguard import DiskGuard, is_disk_full
from agent.scheduler.outcomes import OutcomeMixin
from agent.scheduler.pacing import PollPacer
from agent.scheduler.reachability import Reachability
from agent.scheduler.sweep import Sweeper
from agent.steps.ahead import PrepareAhead, settings_of
from agent.steps.fetch import Budget, fetch
from agent.steps.poll import poll
from agent.steps.prepare import build_request
from agent.steps.submit import submit

if TYPE_CHECKING:
    from agent.config import Config

log = logging.getLogger(__name__)

S = JobState
IN_FLIGHT = (S.SUBMITTING, S.SUBMITTED)  # on the platform; a download no longer occupies it
SWEEP_INTERVAL_S = 1.0
HEARTBEAT_LIMIT_S = 60.0  # the loop wakes at least every second; a minute without a round means it is blocked
STEP_MARGIN_S = 60.0  # a step may take twice its longest request (a retry inside a client) plus this  # deadlines and lost submits are looked for this often
_PHASES: dict[JobState, Phase] = {S.CAPTURED: "submit", S.SUBMITTED: "poll", S.DOWNLOADING: "fetch"}


class Scheduler(OutcomeMixin):
    def __init__(
        self,
        store: JobStore,
        lifecycle: Lifecycle,
        clients: dict[str, PlatformClient],
        config: Callable[[], Config],
        *,
        url_for: Callable[[str, str], str],
        present: Callable[[Job], None] | None = None,
        on_alarm: Callable[[str, str, str], None] = lambda code, platform, message: None,
    ) -> None:
        self.store = store
        self.lifecycle = lifecycle
        self.clients = clients  # the core's dict: a reload may replace entries
        self._config = config  # the current config snapshot, read at use time
        self.url_for = url_for  # (job_id, file name) -> URL served by the local HTTP API
        self.present = present
        self.on_alarm = on_alarm  # (code, platform, message): auth | offline | online
        pool_size = config().queue.max_in_flight + 2  # a thread pool cannot grow: sized from the first snapshot
        self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="job")
        self._pool_size = pool_size
        self.ahead = PrepareAhead(self._pool.submit)  # uploads prepared while their photos are saved
        self._running: dict[str, float] = {}  # job id -> when its step started (time.monotonic())
        self._heartbeat = time.monotonic()  # the loop's last round (a blocked loop stops the watchdog)
        self.own_jobs: set[str] | None = None  # when set, only these jobs are worked on (`edge-agent once`)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sweep = 0.0
        self.disk = DiskGuard(
            lambda: (self.config.device.state_dir, self.config.device.results_dir),
            lambda code, message: self.on_alarm(code, "", message),
        )
        self.eta = EtaModel(store)  # this device's run times per profile: the ETA when the platform gives none
        self.pacer = PollPacer(self.eta)  # when each submitted task is polled next
        self.sweeper = Sweeper(store, lifecycle, config, self._cancel_later)
        self.reach = Reachability(self._probe_platform, self._platform_back, lambda: self.config.queue.probe_interval_s)

    @property
    def config(self) -> Config:
        return self._config()

    @property
    def retry(self) -> RetryPolicy:
        q = self.config.queue
        return RetryPolicy(q.retry_base_s, q.retry_cap_s)

    @property
    def offline(self) -> dict[str, float]:
        return self.reach.offline

    # ------------------------------------------------------------------------------------------ service

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def alive(self) -> bool:
        """The loop runs, has gone round recently, and no step has run far longer than any request may take:
        a stuck job pool stops the systemd watchdog, which restarts the daemon (the queue is durable)."""
        if self._thread is None or not self._thread.is_alive():
            return False
        now = time.monotonic()
        return now - self._heartbeat < HEARTBEAT_LIMIT_S and not self.stuck(now)

    def stuck(self, now: float | None = None) -> list[str]:
        """Jobs whose step has run longer than the longest a request may take (a hung socket, a driver)."""
        now = time.monotonic() if now is None else now
        limit = self._step_limit()
        with self._lock:
            return [jid for jid, t in self._running.items() if now - t > limit]

    def _step_limit(self) -> float:
        cfg = self.config
        longest = max(
            [60.0] + [max(p.read_timeout_s, getattr(p, "download_deadline_s", 120.0)) for p in cfg.platforms.values()]
        )
        return 2 * longest + STEP_MARGIN_S

    def wake(self) -> None:
        self._wake.set()

    def has_idle_thread(self) -> bool:
        """Whether a step could start now (a job thread is free): else work done ahead would only wait."""
        with self._lock:
            return len(self._running) < self._pool_size

    # ------------------------------------------------------------------------------------------ scheduling

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self._tick(clock.now())
            except Exception as e:  # the scheduler must outlive any bug in one step
                if is_disk_full(e):
                    self.disk.hit(e)
                else:
                    log.exception("scheduler tick failed")
                delay = 1.0
            self._wake.wait(delay)
            self._wake.clear()

    def _limits(self) -> tuple[tuple[int, int], ...]:
        """(priority, per-platform in-flight limit), highest priority first: a person at the booth may fill a
        platform; remote captures and the backlog all but one slot, kept for the next guest."""
        n = self.config.queue.max_in_flight
        rest = n - 1 if n > 1 else 1
        return (PRIORITY_GUEST, n), (PRIORITY_REMOTE, rest), (PRIORITY_BACKLOG, rest)

    def _tick(self, now: float) -> float:
        self._heartbeat = time.monotonic()
        if self.disk.paused():
            return self.disk.next_probe_in()
        if now - self._last_sweep >= SWEEP_INTERVAL_S:
            self._last_sweep = now
            with self._lock:
                running = set(self._running)
            self.sweeper.sweep(now, skip=running, only=self.own_jobs)
        for name in self.reach.due_probes(now):
            self._pool.submit(self.reach.probe, name)
        with self._lock:
            free = self._pool_size - len(self._running)
            running = set(self._running)
        in_flight = self.store.count_by_platform(IN_FLIGHT)
        offline = set(self.reach.offline)
        if free > 0:
            for job in self._pick(now, free, running, in_flight, offline):  # counts the picks into in_flight
                with self._lock:
                    self._running[job.id] = time.monotonic()
                    running.add(job.id)
                self._pool.submit(self._run, job)
                free -= 1
        # sleep until the next job that could be picked is due. Jobs held back by an in-flight limit are left
        # out (a running step that ends wakes this loop), so they never shorten the sleep nor delay a poll.
        times = [
            self.store.next_due_time(
                (S.SUBMITTED, S.DOWNLOADING), exclude=running, skip_platforms=offline, only_ids=self.own_jobs
            )
        ]
        for priority, limit in self._limits():
            full = offline | {p for p, n in in_flight.items() if n >= limit}
            times.append(
                self.store.next_due_time(
                    (S.CAPTURED,), exclude=running, skip_platforms=full, only_ids=self.own_jobs, priority=priority
                )
            )
        pending = [t for t in times if t is not None]
        now = clock.now()
        nxt = min(pending) if pending else None
        wait = 1.0 if nxt is None else (1.0 if nxt <= now and free <= 0 else min(1.0, max(0.005, nxt - now)))
        probe_at = self.reach.next_probe_at()
        if probe_at is not None:
            wait = min(wait, max(0.02, probe_at - now))
        return wait

    def _pick(
        self, now: float, free: int, running: set[str], in_flight: dict[str, int], offline: set[str]
    ) -> list[Job]:
        only = self.own_jobs
        # tasks already on a platform first: polls and downloads need no new slot
        picked = self.store.due(
            now, (S.SUBMITTED, S.DOWNLOADING), limit=free, exclude=running, skip_platforms=offline, only_ids=only
        )
        free -= len(picked)
        for priority, limit in self._limits():
            if free <= 0:
                break
            full = offline | {p for p, n in in_flight.items() if n >= limit}
            taken = running | {j.id for j in picked}
            for job in self.store.due(
                now, (S.CAPTURED,), limit=free, exclude=taken, skip_platforms=full, only_ids=only, priority=priority
            ):
                if in_flight.get(job.platform or "", 0) >= limit:
                    continue  # filled by an earlier job of this round
                picked.append(job)
                in_flight[job.platform or ""] = in_flight.get(job.platform or "", 0) + 1
                free -= 1
        return picked

    # ------------------------------------------------------------------------------------------ one step

    def _run(self, job: Job) -> None:
        current: Job | None = job
        try:
            while current is not None:
                current = self._follow_on(self._run_step(current))
        finally:
            with self._lock:
                self._running.pop(job.id, None)
            self._wake.set()

    def _run_step(self, job: Job) -> Job | None:
        """One step; the job as that step left it when it may go on at once (see _follow_on), else None."""
        with self._lock:
            self._running[job.id] = time.monotonic()  # each step gets the full time a step may take
        try:
            return self._step(job)
        except Exception as e:
            if is_disk_full(e):  # not the job's fault: pause everything, the job goes on when there is room
                self.disk.hit(e)
                return None
            # a bug must fail one job with a reason, never kill the scheduler or lose the job
            log.exception("job %s: unexpected error in state %s", job.id, job.state.value)
            self.lifecycle.fail(job.id, f"internal error: {type(e).__name__}: {e}", only_from=(job.state, S.SUBMITTING))
            return None

    def _follow_on(self, job: Job | None) -> Job | None:
        """The job's next step when it may run at once on this thread: the download after a sync answer or a
        poll that saw the task finished (it needs no platform slot). Going back through the loop would cost a
        wake-up, a round of queries and a hand-off to another thread, for a decision already known."""
        if job is None or self._stop.is_set() or self.disk.paused():
            return None
        if job.state != S.DOWNLOADING or job.next_attempt_at > clock.now():
            return None
        self._wake.set()  # its platform slot is free now: a waiting capture need not wait for this download
        if (self.own_jobs is not None and job.id not in self.own_jobs) or (job.platform or "") in self.reach.offline:
            return None
        return job

    def _step(self, job: Job) -> Job | None:
        cfg = self.config
        phase = _PHASES.get(job.state)
        if phase is None:
            return None
        if phase == "submit":
            try:
                profile = cfg.profile(job.profile)
                client = self.clients[profile.platform]
            except KeyError:
                self.lifecycle.fail(
                    job.id, f"profile {job.profile!r} is no longer in the config", only_from=(job.state,)
                )
                return None
            try:
                settings = settings_of(cfg.upload)
                ready = self.ahead.take(job.id, settings)
                req = build_request(job, profile, *settings, prepared=ready)
            except Exception as e:  # PermanentError (photo gone, unreadable) or a bug in prepare
                self.lifecycle.fail(job.id, str(e), only_from=(S.CAPTURED,))
                return None
            started = self.lifecycle.start_submit(
                job.id,
                platform=profile.platform,
                endpoint=profile.endpoint,
                attempts=job.attempts + 1,
                eta_s=self.eta.typical(job.profile),
            )
            if started is None:
                return None  # cancelled meanwhile
            return self._apply(started, phase, submit(client, req), client)
        found = self.clients.get(job.platform or "")
        if found is None:
            self.lifecycle.fail(job.id, f"platform {job.platform!r} is no longer in the config", only_from=(job.state,))
            return None
        if phase == "poll":
            endpoint = job.endpoint or self._endpoint_of(job)
            return self._apply(job, phase, poll(found, job.remote_task_id or "", endpoint), found)
        else:
            budget = Budget(cfg.queue.max_result_mb * 1_048_576, self._deadline_of(job))
            return self._apply(job, phase, fetch(found, job, lambda name: self.url_for(job.id, name), budget), found)

    def _deadline_of(self, job: Job) -> float:
        """The job's task_deadline_s as a time.monotonic() instant: a download never runs past it."""
        ends = (job.submitted_at or job.created_at) + self.config.queue.task_deadline_s
        return time.monotonic() + max(1.0, ends - clock.now())

    def _endpoint_of(self, job: Job) -> str:
        """A job submitted before endpoints were recorded (an older queue): its profile's endpoint."""
        try:
            return self.config.profile(job.profile).endpoint
        except KeyError:
            return ""

    # ------------------------------------------------------------------------------------------ deadlines

    def _cancel_later(self, job: Job) -> None:
        try:
            self._pool.submit(cancel_remote, self.clients.get(job.platform or ""), job)
        except RuntimeError:  # shutting down
            pass

    # ------------------------------------------------------------------------------------------ connectivity

    def _platform_down(self, name: str, reason: str) -> None:
        if not self.reach.went_down(name):
            return
        demoted = self.lifecycle.demote(name)  # whoever presses the button once it is back goes first
        waiting = "no photo waits" if not demoted else "1 photo waits" if demoted == 1 else f"{demoted} photos wait"
        log.warning("platform %s unreachable (%s); %s and the platform is probed", name, reason, waiting)
        self.on_alarm("offline", name, f"platform {name!r} unreachable: {reason}")

    def _probe_platform(self, name: str) -> bool:
        """True when the platform answers (any HTTP answer); None-client platforms count as answering."""
        client = self.clients.get(name)
        if client is None:
            return True
        from agent.platforms.errors import PlatformError

        try:
            client.probe()
        except PlatformError:
            return False
        return True

    def _platform_back(self, name: str) -> None:
        self.lifecycle.wake(name, WAIT_NETWORK)
        waiting = self.store.count_by_platform((S.CAPTURED, S.SUBMITTED, S.DOWNLOADING)).get(name, 0)
        log.info("platform %s reachable again; %d waiting job(s) resume now", name, waiting)
        self.on_alarm("online", name, f"platform {name!r} reachable again")
        self._wake.set()
