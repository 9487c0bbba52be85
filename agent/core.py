"""The core: one Agent takes commands and owns the queue (store, lifecycle, scheduler), the camera, the platform
clients and the event stream.

Inputs (GPIO, MQTT, HTTP, CLI) call ``request(Command)`` and get a Future at once; the work runs on the core's
own threads: captures one at a time on the "capture" thread (there is one camera), cancel/retry/print on the
"control" thread. Every change is published on ``events`` (see events.py), which the kiosk page, the MQTT bridge
and the LEDs follow; the mode is derived from those events (mode.py). Config is read through ``live`` (the
current snapshot) at use time.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from agent import __version__, clock
from agent.admission import Admission
from agent.choices import find_choice
from agent.commands import Command, CommandError, is_remote
from agent.config import Config, LoadedConfig, Secrets
from agent.events import EventBus
from agent.jobs.actions import cancel_job
from agent.jobs.lifecycle import RETRYABLE, Lifecycle
from agent.jobs.model import WORK_STATES, Job, JobState
from agent.jobs.progress import progress_of
from agent.lanes import PriorityWorker
from agent.live import LiveConfig
from agent.mode import ModeTracker
from agent.platforms import make_client
from agent.results import ResultLayout
from agent.scheduler import Scheduler
from agent.status import booth_state
from agent.steps.ahead import settings_of
from agent.steps.capture import check_disk, check_remote_params, new_job_id, store_capture
from agent.steps.present import present

log = logging.getLogger(__name__)
S = JobState
WATCH_INTERVAL_S = 0.5  # how often the store is checked for changes made by other processes


class Agent:
    def __init__(self, loaded: LoadedConfig | LiveConfig, *, camera: Any = None) -> None:
        self.live = loaded if isinstance(loaded, LiveConfig) else LiveConfig(loaded)
        self.events = EventBus()
        cfg = self.config
        cfg.device.state_dir.mkdir(parents=True, exist_ok=True)
        cfg.device.results_dir.mkdir(parents=True, exist_ok=True)
        from agent.recovery import open_store

        self.store, self._store_check = open_store(cfg.device.state_dir / "jobs.db")
        self.layout = ResultLayout(cfg.device.results_dir)
        self.lifecycle = Lifecycle(self.store, self.layout, redact=self.scrub, on_change=self._job_changed)
        from agent.camera import camera_service

        # the camera is a supervised service: opened in the background at start, its state published as events
        self.camera_service = camera_service(
            cfg, camera, on_change=lambda st: self.events.publish("camera.state", **st)
        )
        self.clients = {
            name: make_client(name, p, self.secrets.platform_keys.get(name), user_agent=f"edge-agent/{__version__}")
            for name, p in cfg.platforms.items()
        }
        self.served_at: str | None = None  # where the local API really listens (set by HttpApi once bound)
        self.scheduler = Scheduler(
            self.store,
            self.lifecycle,
            self.clients,
            lambda: self.live.config,
            url_for=self.result_url,
            present=lambda job: present(job, self.events, self.printer),
            on_alarm=self._alarm,
        )
        self.modes = ModeTracker(
            self.events, lambda: self.store.count_in(WORK_STATES), lambda: list(self.scheduler.offline)
        )
        self.admission = Admission(self.store, lambda: self.live.config)
        self._captures = PriorityWorker("capture")  # a guest's capture goes before remote ones
        self._control_pool = ThreadPoolExecutor(1, thread_name_prefix="control")
        self._waiters: dict[str, list[_Waiter]] = {}
        self._waiters_lock = threading.Lock()
        self._emitted: dict[str, str] = {}  # job id -> last state announced (insertion-ordered, bounded)
        self._watcher: threading.Thread | None = None
        self._stopped = False
        self.started = False
        self.mqtt: Any = None  # the MqttBridge, when the daemon runs one (for `status`)
        self.reloader: Any = None  # Runtime.reload, when a daemon runs this agent (POST /api/reload, a pushed config)
        self.reload_info: dict[str, Any] | None = None  # the last reload's result (status)
        self.config_push: Any = None  # ConfigPush.request, when a daemon runs this agent
        self.printer: Any = None  # the PrintService, when the daemon runs one ([printer] enabled)

    # ------------------------------------------------------------------------------------------ config

    @property
    def config(self) -> Config:
        return self.live.config

    @property
    def secrets(self) -> Secrets:
        return self.live.secrets

    @property
    def mode(self) -> str:
        return self.modes.mode

    @property
    def mode_detail(self) -> str | None:
        return self.modes.detail

    # ------------------------------------------------------------------------------------------ service

    @property
    def camera(self) -> Any:
        """What captures go through: the camera service (it refuses with the reason while the camera is down)."""
        return self.camera_service

    def camera_state(self) -> dict[str, Any]:
        """`{"state": "ok"|"opening"|"failed"|"retrying", "detail": str|None}`."""
        return self.camera_service.camera_state()

    def start(self, *, recover: bool = True, only_own_jobs: bool = False) -> None:
        """`recover=False, only_own_jobs=True` is `edge-agent once`: it may share the store with a running
        daemon, so it neither reconciles the store nor touches jobs it did not create."""
        from agent.recovery import RecoveryReport
        from agent.recovery import recover as run_recovery

        self.recovery = run_recovery(self.lifecycle, self.config, self._store_check) if recover else RecoveryReport()
        for line in self.recovery.lines():
            log.info("recovery: %s", line)
        if only_own_jobs:
            self.scheduler.own_jobs = set()
        else:  # `once` opens the camera when it captures (a running daemon may hold it)
            self.camera_service.start()
        self.scheduler.start()
        self.started = True
        self.events.publish("agent.started")
        self.events.flush()  # the mode is derived (ready, offline...) before anyone asks for it
        self._watcher = threading.Thread(target=self._watch_store, name="store-watch", daemon=True)
        self._watcher.start()

    @property
    def alive(self) -> bool:
        watcher = self._watcher is not None and self._watcher.is_alive()
        return self.scheduler.alive and watcher and self.events.alive

    def _watch_store(self) -> None:
        """Announce what other processes (`edge-agent queue cancel/retry`) changed, and keep the mode true."""
        try:
            version = self.store.data_version()
        except Exception:  # stopped (store closed) right after starting
            return
        since = clock.now()
        while self.started:
            time.sleep(WATCH_INTERVAL_S)
            if not self.started:
                return
            try:
                v = self.store.data_version()
                scan_from, since = since - 1.0, clock.now()  # only what changed since the last look
                if v != version:
                    version = v
                    for job in self.store.updated_since(scan_from):
                        if self._emitted.get(job.id) != job.state.value:
                            self._job_changed(job)
                    self.scheduler.wake()
                self.modes.refresh()  # e.g. the error indication's hold time ran out
            except Exception:  # the store is closing, or a passing error: try again next round
                if self.started:
                    log.debug("store watch failed", exc_info=True)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.started = False
        self._captures.shutdown()
        self._control_pool.shutdown(wait=True, cancel_futures=True)
        self.scheduler.stop()
        self.camera_service.stop()
        for c in self.clients.values():
            c.close()
        self.events.close()
        self.store.close()

    def scrub(self, text: str) -> str:
        """Mask every configured secret in a text that will be stored, served or published (a platform may echo
        the key back in an error message)."""
        return self.live.redactor.mask(text)

    @property
    def public_base(self) -> str:
        """How results are linked (MQTT, QR codes): http.public_url, else where the API really listens."""
        http = self.config.http
        if http.public_url:
            return http.public_url.rstrip("/")
        return self.served_at or f"http://{http.listen}"

    def result_url(self, job_id: str, name: str) -> str:
        return f"{self.public_base}/results/{job_id}/{name}"

    # ------------------------------------------------------------------------------------------ commands

    def request(self, cmd: Command) -> Future[dict[str, Any]]:
        """Hand a command to the core; never blocks. The future holds a small dict or a CommandError."""
        try:
            if cmd.action == "config":  # a fleet config push (agent/configpush.py): only a daemon has one
                if self.config_push is None:
                    raise CommandError("unavailable", "config push needs the daemon (`edge-agent run`)")
                return self.config_push(cmd)
            if cmd.action != "capture":
                return self._control_pool.submit(self._execute, cmd)
            if not is_remote(cmd.source):
                return self._captures.submit(0, self._capture, cmd)
            self.admission.admit_remote(cmd.source)  # a flood is refused here, before it queues for the camera
            try:
                return self._captures.submit(1, self._remote_capture, cmd)
            except RuntimeError:
                self.admission.taken()
                raise
        except CommandError as e:
            return _failed(e)
        except RuntimeError:  # shutting down
            return _failed(CommandError("unavailable", "the agent is shutting down"))

    def _remote_capture(self, cmd: Command) -> dict[str, Any]:
        self.admission.taken()
        return self._capture(cmd)

    def _execute(self, cmd: Command) -> dict[str, Any]:
        handler = {"capture": self._capture, "cancel": self._cancel, "retry": self._retry, "print": self._print}
        if cmd.action not in handler:
            raise CommandError("bad_request", f"unknown action {cmd.action!r}")
        return handler[cmd.action](cmd)

    def _refuse(self, code: str, message: str, source: str, retry_after: float | None = None) -> CommandError:
        self.events.publish("capture.refused", code=code, message=message, source=source)
        return CommandError(code, message, retry_after)

    def _capture(self, cmd: Command, image: bytes | None = None) -> dict[str, Any]:
        cfg = self.config
        try:
            profile = cfg.profile(cmd.profile)
        except KeyError:
            names = ", ".join(p.name for p in cfg.profiles)
            raise CommandError("not_found", f"unknown profile {cmd.profile!r} (profiles: {names})") from None
        params = check_remote_params(profile, cmd.params)  # whatever the source says it is
        choice = find_choice(profile, cmd.choice)  # an id of the profile's catalogue, never a path or URL
        if cmd.request_id:
            # a command redelivered (MQTT QoS 1 after a restart, a kiosk or HTTP client retrying) is answered with
            # the job it made, not run again - whatever source label it carries
            earlier = self.store.find_by_request_id(cmd.request_id)
            if earlier is not None:
                return {"job_id": earlier.id, "state": earlier.state.value, "profile": earlier.profile}
        try:
            check_disk(cfg)
            if is_remote(cmd.source):
                self.admission.check_queue()  # a person at the booth is served while there is disk
        except CommandError as e:
            raise self._refuse(e.code, e.message, cmd.source, e.retry_after) from None
        self.events.publish("capture.started", source=cmd.source)
        ok = False
        try:
            if image is None:
                try:
                    image = self.camera.capture().jpeg
                except Exception as e:
                    raise self._refuse("camera", f"camera failed: {e}", cmd.source) from None
            offline = self.scheduler.offline
            job_id = new_job_id()
            if (
                not is_remote(cmd.source)
                and profile.platform not in offline
                and profile.sends_photo()
                and self.scheduler.has_idle_thread()
            ):
                # made while the photo is saved (the disk waits, the CPU works): ready when the job is picked
                self.scheduler.ahead.start(job_id, image, settings_of(cfg.upload))
            try:
                job = store_capture(
                    self.layout,
                    image,
                    profile=profile,
                    source=cmd.source,
                    params=params,
                    request_id=cmd.request_id,
                    backlog=profile.platform in offline,
                    choice=choice.id if choice is not None else None,
                    eta_s=self.scheduler.eta.typical(profile.name),
                    job_id=job_id,
                )
                self.lifecycle.captured(job)  # committed: the photo is now in the durable queue
                if job.priority and profile.platform in offline:
                    # the platform went away while this photo was being saved: it joins the backlog too
                    self.lifecycle.demote(profile.platform)
            except (OSError, sqlite3.Error) as e:
                full = isinstance(e, OSError) and e.errno == errno.ENOSPC or "full" in str(e)
                msg = (
                    f"storage full: the photo could not be saved in {self.layout.root}"
                    if full
                    else f"could not save the photo: {e}"
                )
                self.scheduler.ahead.forget(job_id)
                raise self._refuse("disk_full" if full else "storage", msg, cmd.source) from None
            ok = True
        finally:
            self.events.publish("capture.ended", ok=ok, source=cmd.source)
        self.scheduler.wake()
        return {"job_id": job.id, "state": job.state.value, "profile": job.profile, "choice": job.choice}

    def capture_file(
        self, image: bytes, *, profile: str | None = None, source: str = "cli", choice: str | None = None
    ) -> dict[str, Any]:
        """Queue a given photo (``edge-agent once --image FILE``) instead of taking one."""
        cmd = Command("capture", source, profile=profile, choice=choice)
        return self._captures.submit(0, self._capture, cmd, image).result()

    def _find_job(self, job_id: str | None, states: tuple[JobState, ...], what: str) -> Job:
        if job_id is None:
            job = self.store.latest(states)
            if job is None:
                raise CommandError("not_found", f"no job to {what}")
            return job
        job = self.store.get(job_id)  # full ids only: a short prefix could be guessed (CLI `queue` takes prefixes)
        if job is None:
            raise CommandError("not_found", f"no job {job_id!r} (give the full job id)")
        return job

    def _cancel(self, cmd: Command) -> dict[str, Any]:
        job = self._find_job(cmd.job_id, WORK_STATES, "cancel")
        j = cancel_job(self.lifecycle, job.id, self.clients, note=f"cancelled by {cmd.source}")
        if j is None:
            now = self.store.get(job.id)
            raise CommandError("invalid_state", f"job {job.id} is already {now.state.value if now else 'gone'}")
        return {"job_id": j.id, "state": j.state.value}

    def _retry(self, cmd: Command) -> dict[str, Any]:
        job = self._find_job(cmd.job_id, RETRYABLE, "retry")
        j = self.lifecycle.retry(job.id, note=f"retried by {cmd.source}")
        if j is None:
            raise CommandError(
                "invalid_state",
                f"job {job.id} is {job.state.value}; only failed, expired or cancelled jobs can be retried",
            )
        self.scheduler.wake()
        return {"job_id": j.id, "state": j.state.value}

    def _print(self, cmd: Command) -> dict[str, Any]:
        """Checks and records the print (milliseconds); rendering and `lp` run on the printer thread."""
        if not self.config.printer.enabled:
            raise CommandError("unavailable", "printing is off ([printer] enabled = false)")
        if self.printer is None:
            raise CommandError("unavailable", "the print service is not running (it runs with `edge-agent run`)")
        job = self._find_job(cmd.job_id, (S.DONE,), "print")
        return dict(self.printer.request(job, cmd.params.get("copies"), cmd.source, cmd.request_id))

    # ------------------------------------------------------------------------------------------ state & events

    def _job_changed(self, job: Job, progress_only: bool = False) -> None:
        data: dict[str, Any] = {
            "job_id": job.id,
            "profile": job.profile,
            "source": job.source,
            "state": job.state.value,
            "request_id": job.request_id,
            "platform": job.platform,
            "created_at": job.created_at,
            "choice": job.choice,
            **progress_of(job),  # progress, stage, step, queue_position, eta_s: what a guest reads
        }
        if job.state in (S.FAILED, S.EXPIRED, S.CANCELLED) or (job.error and not job.state.final):
            data["error"] = job.error
        if job.state == S.DONE:
            data["outputs"] = [{"type": o.type, "url": o.url, "path": o.path} for o in job.outputs]
        self._emitted[job.id] = job.state.value
        if len(self._emitted) > 5000:
            try:
                self._emitted.pop(next(iter(self._emitted)))
            except (StopIteration, RuntimeError, KeyError):  # another thread trimmed it meanwhile
                pass
        self.events.publish("job.progress" if progress_only else f"job.{job.state.value}", **data)
        if job.state.final:
            with self._waiters_lock:
                waiting = self._waiters.pop(job.id, [])
            for w in waiting:
                w.job = job
                w.done.set()

    def _alarm(self, code: str, platform: str, message: str) -> None:
        self.events.publish("alarm", code=code, platform=platform, message=self.scrub(message))

    def state(self) -> dict[str, Any]:
        """What `status`, `/api/state` and MQTT `B/state` show (agent/status.py)."""
        return booth_state(self)

    def wait_for(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job reaches a final state (or timeout); returns the job as it is then."""
        w = _Waiter()
        with self._waiters_lock:
            self._waiters.setdefault(job_id, []).append(w)
        job = self.store.get(job_id)
        if job is not None and not job.state.final:
            w.done.wait(timeout)
            job = w.job or self.store.get(job_id)  # the finished job as it was announced: no second read
        if w.job is None:  # ended before (or timed out): nobody will pop this waiter
            with self._waiters_lock:
                waiting = self._waiters.get(job_id)
                if waiting is not None and w in waiting:
                    waiting.remove(w)
                    if not waiting:
                        self._waiters.pop(job_id, None)
        if job is None:
            raise KeyError(job_id)
        return job


class _Waiter:
    __slots__ = ("done", "job")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.job: Job | None = None


def _failed(e: Exception) -> Future[dict[str, Any]]:
    f: Future[dict[str, Any]] = Future()
    f.set_exception(e)
    return f
