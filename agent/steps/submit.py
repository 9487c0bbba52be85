"""Submit: one request to the platform with the prepared photo. Async endpoints answer with a task id to poll;
sync ones (images.edits) with the result itself."""

from __future__ import annotations

from agent.platforms.base import PlatformClient, SubmitRequest
from agent.platforms.errors import PlatformError
from agent.steps import Advance, Error, Outcome


def submit(client: PlatformClient, req: SubmitRequest) -> Outcome:
    try:
        res = client.submit(req)
    except PlatformError as e:
        return Error(e)
    if res.task_id is not None:
        return Advance("submitted", {"task_id": str(res.task_id)})
    status = res.status
    if status is None or status.state != "success":
        from agent.platforms.errors import PermanentError

        why = (status.message if status is not None else None) or "the platform answered without a task or a result"
        return Error(PermanentError(f"the platform failed the task: {why}", kind="protocol"))
    return Advance(
        "task_done",
        {"remote_outputs": [o.as_dict() for o in status.outputs], "note": "; ".join(status.warnings)[:500] or None},
    )
