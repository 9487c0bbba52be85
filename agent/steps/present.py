"""Present: what happens once a job's outputs are on disk, before `job.done` is announced.

Today: the result is published (a ``result`` event on the stream: the MQTT bridge keeps it retained on
B/result, the kiosk shows it). Auto-print and the display join here, so a guest's result reaches every output from
one place.
"""

from __future__ import annotations

from typing import Any

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


def present(job: Job, events: EventBus) -> None:
    events.publish("result", **presented(job))
