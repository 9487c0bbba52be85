"""What the core and the CLI (`edge-agent queue cancel`) share beyond a plain lifecycle move."""

from __future__ import annotations

import logging

from agent.jobs.lifecycle import Lifecycle
from agent.jobs.model import Job
from agent.platforms.base import PlatformClient

log = logging.getLogger(__name__)


def cancel_job(lifecycle: Lifecycle, job_id: str, clients: dict[str, PlatformClient], note: str) -> Job | None:
    """Cancel a job that is not final; also cancel its remote task where the platform can."""
    j = lifecycle.cancel(job_id, note)
    if j is not None:
        cancel_remote(clients.get(j.platform or ""), j)
    return j


def cancel_remote(client: PlatformClient | None, job: Job) -> None:
    """Ask the platform to drop the job's task (nobody waits for it; it may cost money); never raises."""
    if client is None or not job.remote_task_id or not client.supports_cancel:
        return
    try:
        client.cancel(job.remote_task_id, job.endpoint or "")
    except Exception as e:  # PlatformError, or an endpoint without a cancel: the job ends either way
        log.info("job %s: remote task %s not cancelled: %s", job.id, job.remote_task_id, e)
