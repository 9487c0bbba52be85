"""The core: one Agent owns the store, the camera, the platform clients, the worker and the event stream.

Inputs (GPIO, MQTT, HTTP, CLI) call ``request(Command)`` and get a Future at once; the work runs on the core's
own threads: captures one at a time on the "capture" thread (there is one camera), cancel/retry/print on the
"control" thread. Every change is published on ``events`` (see events.py), which the kiosk page, the MQTT bridge
and the LEDs follow.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent import __version__
from agent.commands import Command, CommandError
from agent.config import LoadedConfig
from agent.events import Event, EventBus
from agent.jobs.model import ACTIVE_STATES, Job, JobState
from agent.jobs.store import WORK_STATES, JobStore
from agent.jobs.worker import Worker
from agent.platforms import make_client
from agent.platforms.base import PlatformError
from agent.results import ResultLayout
from agent.steps.capture import check_disk, check_remote_params, store_capture

log = logging.getLogger(__name__)
S = JobState
ERROR_HOLD_S = 30.0  # the error indication stays this long after a failed job (then: ready)
WATCH_INTERVAL_S = 0.5  # how often the store is checked for changes made by other processes


class Agent:
    def __init__(self, loaded: LoadedConfig, *, camera: Any = None) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self.secrets = loaded.secrets
        self.events = EventBus()
        self._secret_values = sorted(set(self.secrets.all_values()), key=len, reverse=True)
        cfg = self.config
        cfg.device.state_dir.mkdir(parents=True, exist_ok=True)
        cfg.device.results_dir.mkdir(parents=True, exist_ok=True)
        from agent.recovery import open_store

        self.store, self._store_check = open_store(cfg.device.state_dir / "jobs.db")
        self.layout = ResultLayout(cfg.device.results_dir)
        self._camera = camera
        self.clients = {
            name: make_client(name, p, self.secrets.platform_keys.get(name), user_agent=f"edge-agent/{__version__}")
            for name, p in cfg.platforms.items()
        }
        self.public_base = cfg.http.public_url.rstrip("/") if cfg.http.public_url else f"http://{cfg.http.listen}"
        self.worker = Worker(
            self.store, self.clients, cfg, self.layout, on_change=self._job_changed, on_alarm=self._alarm,
            url_for=self.result_url, scrub=self.scrub,
        )
        self._capture_pool = ThreadPoolExecutor(1, thread_name_prefix="capture")
        self._control_pool = ThreadPoolExecutor(1, thread_name_prefix="control")
        self._mode_lock = threading.Lock()
        self.mode = "starting"
        self.mode_detail: str | None = None
        self._capturing = False
        self._disk_full: str | None = None
        self._alarm_msg: str | None = None
        self._last_failure_at = 0.0
        self._waiters: dict[str, list[threading.Event]] = {}
        self._emitted: dict[str, str] = {}  # job id -> last state announced (insertion-ordered, bounded)
        self.started = False
        self.mqtt: Any = None  # the MqttBridge, when the daemon runs one (for `status`)
        self.events.on_event(self._on_event)

    # ------------------------------------------------------------------------------------------ lifecycle

    @property
    def camera(self) -> Any:
        if self._camera is None:
            from hardware.camera import make_camera

            self._camera = make_camera(self.config.camera)
        return self._camera

    def start(self, *, recover: bool = True, only_own_jobs: bool = False) -> None:
        """`recover=False, only_own_jobs=True` is `edge-agent once`: it may share the store with a running
        daemon, so it neither reconciles the store nor touches jobs it did not create."""
        from agent.recovery import RecoveryReport, recover as run_recovery

        self.recovery = (run_recovery(self.store, self.layout, self.config, self._store_check) if recover
                         else RecoveryReport())
        for line in self.recovery.lines():
            log.info("recovery: %s", line)
        if only_own_jobs:
            self.worker.own_jobs = set()
        self.worker.start()
        self.started = True
        self._refresh_mode()
        self._watcher = threading.Thread(target=self._watch_store, name="store-watch", daemon=True)
        self._watcher.start()

    def _watch_store(self) -> None:
        """Announce what other processes (`edge-agent queue cancel/retry`) changed, and keep the mode true."""
        version = self.store.data_version()
        since = time.time()
        while self.started:
            time.sleep(WATCH_INTERVAL_S)
            if not self.started:
                return
            try:
                v = self.store.data_version()
                scan_from, since = since - 1.0, time.time()  # only what changed since the last look
                if v != version:
                    version = v
                    for job in self.store.updated_since(scan_from):
                        if self._emitted.get(job.id) != job.state.value:
                            self._job_changed(job)
                    self.worker.wake()
                self._refresh_mode(announce_state=False)
            except Exception:  # the store is closing, or a passing error: try again next round
                if self.started:
                    log.debug("store watch failed", exc_info=True)

    def stop(self) -> None:
        if getattr(self, "_stopped", False):
            return
        self._stopped = True
        self.started = False
        self._capture_pool.shutdown(wait=True, cancel_futures=True)
        self._control_pool.shutdown(wait=True, cancel_futures=True)
        self.worker.stop()
        if self._camera is not None:
            try:
                self._camera.close()
            except Exception:
                log.exception("camera close failed")
        for c in self.clients.values():
            c.close()
        self.events.close()
        self.store.close()

    def scrub(self, text: str) -> str:
        """Mask every configured secret in a text that will be stored, served or published (a platform may echo
        the key back in an error message)."""
        for secret in self._secret_values:
            text = text.replace(secret, "***")
        return text

    def result_url(self, job_id: str, name: str) -> str:
        return f"{self.public_base}/results/{job_id}/{name}"

    # ------------------------------------------------------------------------------------------ commands

    def request(self, cmd: Command) -> "Future[dict[str, Any]]":
        """Hand a command to the core; never blocks. The future holds a small dict or a CommandError."""
        pool = self._capture_pool if cmd.action == "capture" else self._control_pool
        try:
            return pool.submit(self._execute, cmd)
        except RuntimeError:  # shutting down
            f: Future[dict[str, Any]] = Future()
            f.set_exception(CommandError("unavailable", "the agent is shutting down"))
            return f

    def _execute(self, cmd: Command) -> dict[str, Any]:
        handler = {"capture": self._capture, "cancel": self._cancel, "retry": self._retry, "print": self._print}
        if cmd.action not in handler:
            raise CommandError("bad_request", f"unknown action {cmd.action!r}")
        return handler[cmd.action](cmd)

    def _capture(self, cmd: Command, image: bytes | None = None) -> dict[str, Any]:
        try:
            profile = self.config.profile(cmd.profile)
        except KeyError:
            names = ", ".join(p.name for p in self.config.profiles)
            raise CommandError("not_found", f"unknown profile {cmd.profile!r} (profiles: {names})") from None
        params = check_remote_params(profile, cmd.params)  # whatever the source says it is
        if cmd.request_id and cmd.source in ("mqtt", "http"):
            # a command redelivered after a restart (MQTT QoS 1) is answered with the job it made, not run again
            earlier = self.store.find_by_request_id(cmd.request_id)
            if earlier is not None:
                return {"job_id": earlier.id, "state": earlier.state.value, "profile": earlier.profile}
        try:
            check_disk(self.config)
        except CommandError as e:
            self._disk_full = e.message
            self.events.publish("capture.refused", code=e.code, message=e.message, source=cmd.source)
            self._refresh_mode()
            raise
        if self._disk_full:
            self._disk_full = None
        self._capturing = True
        self._refresh_mode()
        try:
            if image is None:
                try:
                    image = self.camera.capture().jpeg
                except Exception as e:
                    msg = f"camera failed: {e}"
                    self.events.publish("capture.refused", code="camera", message=msg, source=cmd.source)
                    raise CommandError("camera", msg) from None
            try:
                job = store_capture(self.layout, image, profile=profile, source=cmd.source, params=params,
                                    request_id=cmd.request_id,
                                    backlog=profile.platform in self.worker.offline)
                self.store.insert(job)  # committed: the photo is now in the durable queue
                if job.priority and profile.platform in self.worker.offline:
                    # the platform went away while this photo was being saved: it joins the backlog too
                    job = self.store.update(job.id, (S.CAPTURED,), priority=0) or job
            except (OSError, sqlite3.Error) as e:
                full = isinstance(e, OSError) and e.errno == errno.ENOSPC or "full" in str(e)
                msg = (f"storage full: the photo could not be saved in {self.layout.root}"
                       if full else f"could not save the photo: {e}")
                self.events.publish("capture.refused", code="disk_full" if full else "storage", message=msg,
                                    source=cmd.source)
                raise CommandError("disk_full" if full else "storage", msg) from None
        finally:
            self._capturing = False
        self._job_changed(job)
        self.worker.wake()
        return {"job_id": job.id, "state": job.state.value, "profile": job.profile}

    def capture_file(self, image: bytes, *, profile: str | None = None, source: str = "cli") -> dict[str, Any]:
        """Queue a given photo (``edge-agent once --image FILE``) instead of taking one."""
        return self._capture_pool.submit(self._capture, Command("capture", source, profile=profile), image).result()

    def _find_job(self, job_id: str | None, states: tuple[JobState, ...], what: str) -> Job:
        if job_id is None:
            job = self.store.latest(states)
            if job is None:
                raise CommandError("not_found", f"no job to {what}")
            return job
        job = self.store.get(job_id)
        if job is None:
            matches = self.store.find(job_id) if len(job_id) >= 4 else []
            if len(matches) == 1:
                return matches[0]
            raise CommandError("not_found", f"no job {job_id!r}")
        return job

    def _cancel(self, cmd: Command) -> dict[str, Any]:
        job = self._find_job(cmd.job_id, tuple(WORK_STATES), "cancel")
        j = cancel_job(self.store, job.id, self.clients, self.config, note=f"cancelled by {cmd.source}")
        if j is None:
            raise CommandError("invalid_state", f"job {job.id} is already {self.store.get(job.id).state.value}")
        self.layout.write_job_json(j)
        self._job_changed(j)
        return {"job_id": j.id, "state": j.state.value}

    def _retry(self, cmd: Command) -> dict[str, Any]:
        job = self._find_job(cmd.job_id, (S.FAILED, S.EXPIRED, S.CANCELLED), "retry")
        j = retry_job(self.store, job.id, note=f"retried by {cmd.source}")
        if j is None:
            raise CommandError("invalid_state", f"job {job.id} is {job.state.value}; only failed, expired or "
                                                "cancelled jobs can be retried")
        self._job_changed(j)
        self.worker.wake()
        return {"job_id": j.id, "state": j.state.value}

    def _print(self, cmd: Command) -> dict[str, Any]:
        job = self._find_job(cmd.job_id, (S.DONE,), "print")
        if not self.config.printer.enabled:
            raise CommandError("unavailable", "printing is off ([printer] enabled = false)")
        if job.state != S.DONE:
            raise CommandError("invalid_state", f"job {job.id} is {job.state.value}; only done jobs print")
        from hardware.printer import CupsPrinter, PrinterError

        images = [o.path for o in job.outputs if o.type == "image" and o.path]
        if not images:
            raise CommandError("invalid_state", f"job {job.id} has no image to print")
        try:
            cups_job = CupsPrinter(self.config.printer.queue).print_file(Path(images[0]), title=f"edge-agent {job.id}")
        except PrinterError as e:
            raise CommandError("printer", str(e)) from None
        self.events.publish("job.printed", job_id=job.id, profile=job.profile, cups_job=cups_job)
        return {"job_id": job.id, "state": job.state.value, "cups_job": cups_job}

    # ------------------------------------------------------------------------------------------ state & events

    def _job_changed(self, job: Job, progress_only: bool = False) -> None:
        data: dict[str, Any] = {
            "job_id": job.id, "profile": job.profile, "source": job.source, "state": job.state.value,
            "progress": job.progress, "request_id": job.request_id,
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
        if progress_only:
            self.events.publish("job.progress", **data)
        else:
            self.events.publish(f"job.{job.state.value}", **data)
        if job.state == S.FAILED:
            self._last_failure_at = time.time()
        if job.state.final:
            for ev in self._waiters.pop(job.id, []):
                ev.set()

    def _alarm(self, code: str, message: str) -> None:
        if code == "auth":
            self._alarm_msg = message
        self.events.publish("alarm", code=code, message=message)
        self._refresh_mode()

    def _on_event(self, ev: Event) -> None:
        if ev.type.startswith("job.") or ev.type == "alarm":
            if ev.type == "job.done":
                self._alarm_msg = None  # a delivered job proves the key works again
                self._last_failure_at = 0.0  # ... and that the booth works: the error indication ends
            self._refresh_mode()

    def _refresh_mode(self, announce_state: bool = True) -> None:
        # compute and assign under one lock: a slower thread must never write back a stale mode
        with self._mode_lock:
            mode, detail = self._compute_mode()
            changed = (mode, detail) != (self.mode, self.mode_detail)
            self.mode, self.mode_detail = mode, detail
            if changed:
                self.events.publish("agent.mode", mode=mode, detail=detail)
        if changed or announce_state:
            self.events.publish("agent.state")

    def _compute_mode(self) -> tuple[str, str | None]:
        if not self.started:
            return "starting", None
        if self._disk_full:
            return "disk_full", self._disk_full
        if self._capturing:
            return "capturing", None
        if self._alarm_msg:
            return "error", self._alarm_msg
        pending = self.store.count_in(WORK_STATES)
        if pending and self.worker.offline:
            return "offline", f"platform unreachable: {', '.join(sorted(self.worker.offline))}; {pending} waiting"
        if pending:
            return "processing", None
        if time.time() - self._last_failure_at < ERROR_HOLD_S:
            return "error", self.store.last_error()
        return "ready", None

    def state(self) -> dict[str, Any]:
        counts = self.store.counts()
        current = self.store.latest(ACTIVE_STATES) or self.store.latest((S.CAPTURED,))
        err = self.store.last_error_info()
        return {
            "mode": self.mode,
            "detail": self.mode_detail,
            "queue": counts,
            "current_job": current.id if current else None,
            "last_error": err["error"] if err else None,
            "last_error_job": err["job_id"] if err else None,
            "last_error_at": round(err["at"], 3) if err else None,
            "version": __version__,
            "device": self.config.device.id,
            "profiles": [p.name for p in self.config.profiles],
            "platforms": {n: ("offline" if n in self.worker.offline else "online") for n in self.clients},
            **({"mqtt": "connected" if self.mqtt.connected else "disconnected"} if self.mqtt is not None else {}),
        }

    def wait_for(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job reaches a final state (or timeout); returns the job as it is then."""
        ev = threading.Event()
        self._waiters.setdefault(job_id, []).append(ev)
        job = self.store.get(job_id)
        if job is not None and not job.state.final:
            ev.wait(timeout)
        job = self.store.get(job_id)
        if job is None:
            raise KeyError(job_id)
        return job


# ---------------------------------------------------------------------------------------------- shared by CLI


def cancel_job(store: JobStore, job_id: str, clients: dict, config: Any, note: str) -> Job | None:
    """Cancel a job that is not final; also cancel its remote task where the platform can."""
    j = store.transition(job_id, WORK_STATES, S.CANCELLED, note=note, error=note, wait_kind=None)
    if j is None or not j.remote_task_id:
        return j
    try:
        profile = config.profile(j.profile)
        client = clients[profile.platform]
        if getattr(client, "supports_cancel", False):
            client.cancel(j.remote_task_id, profile.endpoint)
    except (KeyError, PlatformError) as e:
        log.info("job %s: remote cancel not possible: %s", job_id, e)
    return j


def retry_job(store: JobStore, job_id: str, note: str) -> Job | None:
    """Send a failed, expired or cancelled job round again, from its captured photo (a new submit)."""
    job = store.get(job_id)
    if job is None or not Path(job.capture_path).is_file():
        return None
    return store.transition(
        job_id, (S.FAILED, S.EXPIRED, S.CANCELLED), S.CAPTURED, note=note, error=None, failures=0,
        next_attempt_at=0.0, wait_kind=None, remote_task_id=None, remote_outputs=[], progress=None,
        finished_at=None, priority=1, submitted_at=None, outputs=[],
    )


__all__ = ["Agent", "cancel_job", "retry_job"]
