"""The print limits, checked before a print is recorded; each refusal says which limit and how to get past it."""

from __future__ import annotations

from agent import clock
from agent.commands import CommandError
from agent.config.sections import PrinterConfig
from agent.printing.store import PrintStore


class PrintLimit(CommandError):
    """A print refused by a limit: code "limit", HTTP 429 (try later, or after an operator's reset)."""

    def __init__(self, message: str) -> None:
        super().__init__("limit", message)


def check_copies(cfg: PrinterConfig, copies: object) -> int:
    if copies is None:
        return cfg.copies
    if not isinstance(copies, int) or isinstance(copies, bool) or copies < 1:
        raise CommandError("bad_request", "copies must be a whole number of at least 1")
    if copies > cfg.max_copies:
        raise PrintLimit(f"at most {cfg.max_copies} copies per print ([printer] max_copies); asked for {copies}")
    return copies


def check_limits(cfg: PrinterConfig, store: PrintStore, job_id: str, copies: int, *, cooldown: bool = True) -> None:
    """Raises CommandError("limit", ...) when this print would pass a limit; the cool-down first (a double press
    is the usual case; auto_print has no press to debounce and skips it)."""
    last = store.last_created_at()
    if cooldown and cfg.cooldown_s and last is not None:
        wait = cfg.cooldown_s - (clock.now() - last)
        if wait > 0:
            raise PrintLimit(f"printer cooling down: try again in {wait:.0f} s ([printer] cooldown_s)")
    if cfg.max_prints_per_job:
        done = store.sheets(job_id=job_id)
        if done + copies > cfg.max_prints_per_job:
            raise PrintLimit(
                f"this photo has had {done} of its {cfg.max_prints_per_job} prints ([printer] max_prints_per_job)",
            )
    if cfg.max_prints_per_event:
        done = store.sheets(since=store.event_started_at())
        if done + copies > cfg.max_prints_per_event:
            raise PrintLimit(
                f"the event's {cfg.max_prints_per_event} prints are used up ({done} printed); an operator can "
                "reset the count with `edge-agent printer reset-count` ([printer] max_prints_per_event)",
            )
