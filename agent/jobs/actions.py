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
    if j is None or not j.remote_task_id:
        return j
    client = clients.get(j.platform or "")
    if client is None or not getattr(client, "supports_cancel", False):
        return j
    try:
        client.cancel(j.remote_task_id, j.endpoint or "")
    except Exception as e:  # PlatformError, or an endpoint without a cancel: the job is cancelled either way
        log.info("job %s: remote cancel not possible: %s", job_id, e)
    return j
