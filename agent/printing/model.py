"""A print: one request to put one job's result on paper, kept in the store until CUPS says it is done.

    queued ──> sent ──> printing ──> printed
      │          │          │
      └─> held <─┴──────────┘        (the printer is paused or not accepting: nothing is lost)
    any of them ──> failed           (with the reason; never re-sent on its own)

A `held` print without a CUPS job id was never sent: it goes out when the queue is usable again. One with an id
sits in CUPS, which prints it when the queue is enabled; the service keeps following it.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any


class PrintState(str, enum.Enum):
    QUEUED = "queued"  # recorded, not yet handed to CUPS
    SENT = "sent"  # `lp` is running or returned a CUPS job id
    PRINTING = "printing"  # CUPS is printing it
    PRINTED = "printed"
    FAILED = "failed"
    HELD = "held"  # the printer cannot print now (paused, not accepting); kept

    @property
    def final(self) -> bool:
        return self in (PrintState.PRINTED, PrintState.FAILED)


P = PrintState
OPEN_STATES = (P.QUEUED, P.SENT, P.PRINTING, P.HELD)
EDGES: dict[PrintState, frozenset[PrintState]] = {
    P.QUEUED: frozenset({P.SENT, P.HELD, P.FAILED}),
    P.SENT: frozenset({P.PRINTING, P.PRINTED, P.HELD, P.FAILED}),
    P.PRINTING: frozenset({P.PRINTED, P.HELD, P.FAILED}),
    P.HELD: frozenset({P.SENT, P.PRINTING, P.PRINTED, P.FAILED}),
    P.PRINTED: frozenset(),
    P.FAILED: frozenset(),
}


@dataclass
class PrintRecord:
    id: str
    job_id: str
    copies: int
    state: PrintState
    source: str  # button | kiosk | cli | mqtt | http | auto
    created_at: float
    updated_at: float
    cups_job_id: str | None = None
    detail: str | None = None  # why it is held or failed
    auto: bool = False  # made by auto_print (at most one per job)
    request_id: str | None = None

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        d["print_id"] = d.pop("id")
        return d
