"""Present: what happens once a job's outputs are on disk, before `job.done` is announced.

The result is handed to the printer when `auto_print` is on (a print record, before anything is announced, so a
restart finds it; at most one per job), then published (a ``result`` event on the stream: the MQTT bridge keeps it
retained on B/result, the kiosk shows it), so a guest's result reaches every output from one place.
"""

from __future__ import annotations

from typing import Any, Protocol

from agent.events import EventBus
from agent.jobs.model import Job


def presented(job: Job) -> dict[str, Any]:
    """The finished job as every output sees it: its files by type, with the URLs the local API serves."""
    return {
        "job_id": job.id,
        "profile": job.profile,
        "source": job.source,
        "platform": job.platform,
        "outputs": [
            {"type": o.type, "url": o.url, "path": o.path, **({"text": o.text} if o.text else {})} for o in job.outputs
        ],
    }


class AutoPrinter(Protocol):
    def auto_print(self, job: Job) -> None: ...


def present(job: Job, events: EventBus, printer: AutoPrinter | None = None) -> None:
    if printer is not None:
        printer.auto_print(job)
    events.publish("result", **presented(job))
