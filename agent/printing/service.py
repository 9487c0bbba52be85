"""PrintService: the one thread that talks to CUPS. Everything slow (rendering, `lp`, `lpstat`) happens here, never
on the core's control thread: a print request only checks the limits and records a queued print.

Each round (every poll_interval_s, or at once when woken) it reads the queue's state, re-enables a queue CUPS
stopped when auto_resume allows, then moves every open print one step: queued -> sent (rendered, `lp`), or held
while the printer cannot print; a print CUPS holds is followed by its CUPS job id until CUPS says completed.
After a restart the same rounds pick the open prints up: one with a CUPS id is looked up again, one without was
never sent and goes now, and one whose `lp` was cut off by the stop is failed with that reason rather than sent
twice.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from agent import clock
from agent.commands import CommandError
from agent.jobs.model import Job, JobState
from agent.printing.layout import MEDIA, Overlay, PageSpec, media_for_default, render_pdf
from agent.printing.limits import check_copies, check_limits
from agent.printing.model import PrintRecord, PrintState
from agent.printing.printer_state import PrinterView, describe
from agent.printing.store import PrintStore
from hardware.printer import CupsPrinter, PrinterError, PrinterTimeout

if TYPE_CHECKING:
    from agent.config.sections import PrinterConfig
    from agent.core import Agent

log = logging.getLogger(__name__)
P = PrintState
MAX_RENDER_DPI = 300  # a queue's own default above this is not used for the page (memory; see _page)
AUTO_CATCH_UP_S = 900  # a job that finished this recently without its auto print (a crash in between) gets it


class PrintService:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.store = PrintStore(agent.config.device.state_dir / "jobs.db")
        self.spool = agent.config.device.state_dir / "prints"
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        self._first_round = True
        self.view = PrinterView("starting", "looking at the printer")
        self._stopped_since: float | None = None
        self._resume_tries = 0
        self._lock = threading.Lock()  # one request at a time passes the limits and is recorded

    @property
    def cfg(self) -> PrinterConfig:
        return self.agent.config.printer

    def printer(self) -> CupsPrinter:
        return CupsPrinter(self.cfg.queue, timeout_s=self.cfg.lp_timeout_s)

    # ------------------------------------------------------------------------------------------ service

    def start(self) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="printer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.store.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------------------------------------ requests

    def request(self, job: Job, copies: object, source: str, request_id: str | None = None) -> dict[str, Any]:
        """A print asked for by a person or a script: checked, recorded as queued, answered at once."""
        if job.state != JobState.DONE:
            raise CommandError("invalid_state", f"job {job.id} is {job.state.value}; only done jobs print")
        if _image_of(job) is None:
            raise CommandError("invalid_state", f"job {job.id} has no image to print")
        n = check_copies(self.cfg, copies)
        with self._lock:
            if request_id is not None:  # a redelivered MQTT command or a retried HTTP request: the same print
                earlier = [r for r in self.store.for_job(job.id) if r.request_id == request_id]
                if earlier:
                    r = earlier[0]
                    return {"print_id": r.id, "job_id": job.id, "state": r.state.value, "copies": r.copies}
            check_limits(self.cfg, self.store, job.id, n)
            rec = self.store.add(job.id, n, source, request_id=request_id)
        assert rec is not None
        self._announce(rec)
        self.wake()
        return {"print_id": rec.id, "job_id": job.id, "state": rec.state.value, "copies": n}

    def auto_print(self, job: Job) -> None:
        """The present step's hook: one print per job, whatever happens (the store refuses a second)."""
        if not self.cfg.auto_print or _image_of(job) is None or self.store.has_auto(job.id):
            return
        try:
            with self._lock:
                check_limits(self.cfg, self.store, job.id, self.cfg.copies, cooldown=False)
                rec = self.store.add(job.id, self.cfg.copies, "auto", auto=True)
        except CommandError as e:  # a limit: said on the event stream, the guest can still ask at the kiosk
            self.agent.events.publish("print.refused", job_id=job.id, code=e.code, message=e.message, source="auto")
            log.warning("auto print of job %s refused: %s", job.id, e.message)
            return
        if rec is not None:
            self._announce(rec)
            self.wake()

    def reset_event(self) -> None:
        self.store.reset_event()
        self.agent.events.publish("agent.state")

    def state(self) -> dict[str, Any]:
        """What status, /api/state, MQTT state and the kiosk show: {state, detail, ...}; never blocks."""
        return self.view.as_dict(
            queue=self.cfg.queue,
            held=self.store.counts().get(P.HELD.value, 0),
            prints_this_event=self.store.sheets(since=self.store.event_started_at()),
            max_prints_per_event=self.cfg.max_prints_per_event or None,
        )

    # ------------------------------------------------------------------------------------------ the thread

    def _loop(self) -> None:
        while self._running:
            try:
                self._round()
            except Exception:  # a bad round must not end printing for the day
                log.exception("print round failed")
            self._wake.wait(self.cfg.poll_interval_s)
            self._wake.clear()

    def _round(self) -> None:
        printer = self.printer()
        self._refresh(printer)
        if self._first_round:
            self._first_round = False
            self._catch_up_auto()
        for rec in self.store.open_prints():
            if not self._running:
                return
            self._advance(printer, rec)

    def _refresh(self, printer: CupsPrinter) -> None:
        try:
            status = printer.status()
            view = describe(status, self.cfg.queue)
        except PrinterError as e:
            status, view = None, PrinterView("unavailable", str(e))
        if status is not None and status.exists and not status.enabled and self.cfg.auto_resume:
            view = self._auto_resume(printer, view)
        else:
            self._stopped_since = None
        if (view.state, view.detail) != (self.view.state, self.view.detail):
            log.info("printer %s: %s (%s)", self.cfg.queue, view.state, view.detail)
            self.view = view
            self.agent.events.publish("printer.state", state=view.state, detail=view.detail)
            self.agent.events.publish("agent.state")  # B/state and the kiosk follow
        self.view = view

    def _auto_resume(self, printer: CupsPrinter, view: PrinterView) -> PrinterView:
        now = time.monotonic()
        if self._stopped_since is None:
            self._stopped_since = now
        if self._resume_tries >= self.cfg.auto_resume_max:
            return PrinterView(view.state, f"{view.detail}; auto_resume gave up after {self._resume_tries} tries")
        if now - self._stopped_since < self.cfg.auto_resume_delay_s:
            return view
        self._resume_tries += 1
        self._stopped_since = None
        log.warning("printer %s stopped (%s): re-enabling it (try %d)", self.cfg.queue, view.detail, self._resume_tries)
        try:
            printer.enable()
            self.agent.events.publish("printer.resumed", queue=self.cfg.queue, tries=self._resume_tries)
            return describe(printer.status(), self.cfg.queue)
        except PrinterError as e:
            return PrinterView(view.state, f"{view.detail}; auto_resume failed: {e}")

    def _advance(self, printer: CupsPrinter, rec: PrintRecord) -> None:
        if rec.cups_job_id is None:
            if rec.state == P.SENT:  # only after a stop in the middle of `lp`: CUPS may or may not have it
                self._move(
                    rec,
                    P.FAILED,
                    detail="the agent stopped while handing this print to CUPS; not sent "
                    "again so nothing prints twice (print it again if the paper did not come out)",
                )
            elif self.view.usable:
                self._send(printer, rec)
            elif rec.state != P.HELD or rec.detail != self.view.detail:
                self._move(rec, P.HELD, detail=self.view.detail)
            return
        try:
            cjob = printer.job(rec.cups_job_id)
        except PrinterError as e:
            log.debug("print %s: cannot look at CUPS job %s: %s", rec.id, rec.cups_job_id, e)
            return
        if cjob is None:
            self._move(rec, P.FAILED, detail=f"CUPS has no record of job {rec.cups_job_id} any more; not sent again")
        elif not cjob.active:
            if cjob.cancelled:
                self._move(rec, P.FAILED, detail=f"CUPS job {rec.cups_job_id} ended: {' '.join(cjob.alerts)}")
            else:
                self._resume_tries = 0
                self._move(rec, P.PRINTED, detail=None)
        elif not self.view.usable:
            if rec.state != P.HELD or rec.detail != self.view.detail:
                self._move(rec, P.HELD, detail=self.view.detail)
        elif self.view.printing == rec.cups_job_id and rec.state != P.PRINTING:
            self._move(rec, P.PRINTING, detail=None)
        elif rec.state == P.HELD:
            self._move(rec, P.SENT, detail=None)

    def _send(self, printer: CupsPrinter, rec: PrintRecord) -> None:
        job = self.agent.store.get(rec.job_id)
        image = _image_of(job) if job else None
        if job is None or image is None or not Path(image).is_file():
            self._move(rec, P.FAILED, detail="the result to print is gone from disk")
            return
        sent = self._move(rec, P.SENT, detail=None)  # before `lp`: a stop in between is known at the next start
        if sent is None:
            return
        out = self.spool / f"{rec.id}.pdf"
        try:
            spec, options = self._page(printer)
            render_pdf(Path(image), spec, out, when=job.created_at)
            cups_id = printer.print_file(out, title=f"edge-agent {rec.job_id[:8]}", copies=rec.copies, options=options)
        except PrinterTimeout as e:
            # `lp` may have handed the job over before it stalled: sending it again could print it twice
            log.warning("print %s: %s", rec.id, e)
            self._move(sent, P.FAILED, detail=f"{e}; it may still come out, so it is not sent again")
            return
        except (PrinterError, OSError, ValueError, Image.DecompressionBombError) as e:
            log.warning("print %s: %s", rec.id, e)
            # refused by `lp` itself: held prints go again once the printer is usable; a file problem is final
            to = P.HELD if isinstance(e, PrinterError) else P.FAILED
            self._move(sent, to, detail=str(e))
            return
        finally:
            out.unlink(missing_ok=True)  # CUPS keeps its own copy of a submitted file
        self.store.move(rec.id, P.SENT, cups_job_id=cups_id)
        log.info("print %s of job %s: CUPS job %s (%d copies)", rec.id, rec.job_id, cups_id, rec.copies)

    def _page(self, printer: CupsPrinter) -> tuple[PageSpec, dict[str, str]]:
        cfg = self.cfg
        defaults: dict[str, str] = {}
        if cfg.media is None or cfg.dpi is None:
            try:
                defaults = printer.defaults()
            except PrinterError as e:
                log.debug("queue defaults unknown: %s", e)
        media = MEDIA[cfg.media] if cfg.media else media_for_default(defaults.get("PageSize"))
        # a queue's default may be 600-2400 dpi: a page at that resolution takes 300 MB-1 GB in memory, and a
        # 1-2K result gains nothing from it (CUPS scales the rest); 300 dpi is photo quality on 4x6 paper
        dpi = cfg.dpi or min(_dpi(defaults.get("Resolution")) or MAX_RENDER_DPI, MAX_RENDER_DPI)
        ov = cfg.overlay
        spec = PageSpec(
            media, dpi, cfg.margin_mm, cfg.fit, Overlay(ov.frame, ov.logo, ov.text, ov.date_format, ov.font)
        )
        options = {"media": media.pwg} if media.pwg and cfg.media else {}
        return spec, options

    def _move(self, rec: PrintRecord, to: PrintState, **changes: Any) -> PrintRecord | None:
        moved = self.store.move(rec.id, to, **changes)
        if moved is not None and (moved.state != rec.state or moved.detail != rec.detail):
            self._announce(moved)
        return moved

    def _announce(self, rec: PrintRecord) -> None:
        self.agent.events.publish(
            f"print.{rec.state.value}",
            print_id=rec.id,
            job_id=rec.job_id,
            copies=rec.copies,
            source=rec.source,
            cups_job_id=rec.cups_job_id,
            detail=rec.detail,
        )

    def _catch_up_auto(self) -> None:
        if not self.cfg.auto_print:
            return
        since = clock.now() - AUTO_CATCH_UP_S
        for job in self.agent.store.list((JobState.DONE,), limit=50):
            if job.finished_at is not None and job.finished_at >= since:
                self.auto_print(job)


def _image_of(job: Job | None) -> str | None:
    if job is None:
        return None
    return next((o.path for o in job.outputs if o.type == "image" and o.path), None)


def _dpi(resolution: str | None) -> int | None:
    digits = "".join(c for c in (resolution or "").split("x")[0] if c.isdigit())
    return int(digits) if digits and 72 <= int(digits) <= 2400 else None
