"""Fetch: download every output at once (signed links expire), streaming, into the job's folder."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.durable import write_durable
from agent.jobs.model import Job, Output
from agent.platforms.base import PlatformClient, RemoteOutput
from agent.platforms.errors import PermanentError, PlatformError
from agent.steps import Advance, Error, Fail, Outcome

TEXT_INLINE_MAX = 4000  # a text result is kept whole in its file; events and the queue carry its first part


@dataclass(frozen=True)
class Budget:
    """What one job may store: bytes in all, and by when (a time.monotonic() instant). The number of outputs is
    capped where replies are parsed (platforms.*.max_outputs)."""

    max_bytes: int
    deadline: float | None = None


def fetch(client: PlatformClient, job: Job, url_for: Callable[[str], str], budget: Budget) -> Outcome:
    job_dir = Path(job.result_dir or Path(job.capture_path).parent)
    remote = [RemoteOutput.from_dict(d) for d in job.remote_outputs]
    try:
        outputs = fetch_outputs(client, remote, job_dir, url_for, budget)
    except PlatformError as e:
        return Error(e)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # not the job's fault: the scheduler pauses until there is room, then fetches again
        return Fail(f"could not store the result: {e}")
    return Advance("finished", {"outputs": outputs})


def fetch_outputs(
    client: PlatformClient, remote: list[RemoteOutput], job_dir: Path, url_for: Callable[[str], str], budget: Budget
) -> list[Output]:
    if not remote:
        raise PermanentError("the platform reported success but returned no output", kind="output")
    outputs: list[Output] = []
    left = budget.max_bytes
    for i, ro in enumerate(remote, 1):
        if ro.type == "text":
            data = (ro.text if ro.text is not None else (ro.url or "")).encode("utf-8")
            if len(data) > left:
                raise PermanentError(_too_big(budget), kind="output")
            path = job_dir / f"result-{i}.txt"
            write_durable(path, data, sync_dir=False)
            left -= len(data)
            text = data.decode("utf-8")
            outputs.append(
                Output(
                    type="text",
                    path=str(path),
                    url=url_for(path.name),
                    text=text if len(text) <= TEXT_INLINE_MAX else text[:TEXT_INLINE_MAX] + "...",
                    content_type="text/plain; charset=utf-8",
                    size=len(data),
                )
            )
            continue
        try:
            d = client.download(ro, job_dir / f"result-{i}", deadline=budget.deadline, max_bytes=left)
        except PermanentError as e:
            if e.kind == "output" and "larger than" in e.message and left < budget.max_bytes:
                raise PermanentError(_too_big(budget), kind="output") from None
            raise
        left -= d.size
        outputs.append(
            Output(type=d.type, path=str(d.path), url=url_for(d.path.name), content_type=d.content_type, size=d.size)
        )
    return outputs


def _too_big(budget: Budget) -> str:
    return f"the outputs of this job are larger than {budget.max_bytes // 1_048_576} MB in all (queue.max_result_mb)"
