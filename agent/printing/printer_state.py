"""The printer's truth in two words: `state` (ok when a print can go out now) and `detail` (why not, or what it is
doing), from what CUPS says about the queue. `status`, /api/state, MQTT B/state, the kiosk and `doctor` all show it.

    ok             enabled and accepting; detail "idle" or "printing booth-12"
    paused         the queue is disabled (cupsdisable, or CUPS stopped it after an error); detail: the reason
    not_accepting  the queue refuses new jobs (cupsreject)
    error          enabled, but the printer reports an error (media-empty-error, offline-report, ...)
    missing        no such CUPS queue
    unavailable    CUPS is not installed or its scheduler is not running
    off            [printer] enabled = false
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hardware.printer import QueueStatus

_QUIET_REASONS = {"paused", "none", "processing-to-stop-point", "cups-waiting-for-job-completed"}


@dataclass(frozen=True)
class PrinterView:
    state: str
    detail: str | None = None
    printing: str | None = None  # the CUPS job id being printed

    @property
    def usable(self) -> bool:
        return self.state == "ok"

    def as_dict(self, **extra: Any) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail, **{k: v for k, v in extra.items() if v is not None}}


def _reasons(st: QueueStatus) -> list[str]:
    return [r for r in st.reasons if r not in _QUIET_REASONS]


def describe(st: QueueStatus, queue: str) -> PrinterView:
    if not st.exists:
        return PrinterView("missing", f"there is no CUPS queue {queue!r} (lpstat -p lists them)")
    why = "; ".join(x for x in (st.message, ", ".join(_reasons(st))) if x) or None
    if not st.enabled:
        return PrinterView("paused", why or "paused (cupsenable resumes it)")
    if not st.accepting:
        return PrinterView("not_accepting", why or "not accepting jobs (cupsaccept lets them in)")
    errors = [r for r in st.reasons if r.endswith("-error") or r.startswith("offline")]
    if errors:
        return PrinterView("error", ", ".join(errors), st.printing)
    return PrinterView("ok", f"printing {st.printing}" if st.printing else "idle", st.printing)


OFF = PrinterView("off", "[printer] enabled = false")


def look(queue: str) -> PrinterView:
    """Ask CUPS now (doctor, `printer status` with the daemon stopped); the daemon's service keeps its own."""
    from hardware.printer import CupsPrinter, PrinterError

    try:
        return describe(CupsPrinter(queue).status(), queue)
    except PrinterError as e:
        return PrinterView("unavailable", str(e))
