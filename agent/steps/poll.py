"""Poll: ask the platform how a task is doing, with the endpoint the job was submitted with (a profile edited
since then must not send the poll to another endpoint's URL)."""

from __future__ import annotations

from agent.platforms.base import PlatformClient
from agent.platforms.errors import PermanentError, PlatformError
from agent.steps import Advance, Error, Outcome, Running


def poll(client: PlatformClient, task_id: str, endpoint: str) -> Outcome:
    try:
        st = client.poll(task_id, endpoint)
    except PlatformError as e:
        return Error(e)
    # node warnings of a task that still succeeded are for the technician (job history), never the guest's view
    note = ("node warnings: " + "; ".join(st.warnings))[:500] if st.warnings else None
    if st.state == "success":
        return Advance("task_done", {"remote_outputs": [o.as_dict() for o in st.outputs], "note": note})
    if st.state == "failed":
        return Error(
            PermanentError(f"the platform failed the task: {st.message or 'no reason given'}", kind="protocol")
        )
    if st.state == "cancelled":
        return Advance("cancel", {"note": "cancelled on the platform"})
    step = "".join(ch for ch in st.step if ch.isprintable()).strip()[:120] or None if st.step else None
    return Running(progress=st.progress, queue_position=st.queue_position, step=step, eta_s=st.eta_s)
