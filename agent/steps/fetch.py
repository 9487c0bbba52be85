"""Fetch: download every output at once (signed links expire), streaming, into the job's folder."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

from agent.durable import write_durable
from agent.jobs.model import Job, Output
from agent.platforms.base import PlatformClient, RemoteOutput
from agent.platforms.errors import PermanentError, PlatformError
from agent.steps import Advance, Error, Fail, Outcome


def fetch(client: PlatformClient, job: Job, url_for: Callable[[str], str]) -> Outcome:
    job_dir = Path(job.result_dir or Path(job.capture_path).parent)
    remote = [RemoteOutput.from_dict(d) for d in job.remote_outputs]
    try:
        outputs = fetch_outputs(client, remote, job_dir, url_for)
    except PlatformError as e:
        return Error(e)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # not the job's fault: the scheduler pauses until there is room, then fetches again
        return Fail(f"could not store the result: {e}")
    return Advance("finished", {"outputs": outputs})


def fetch_outputs(
    client: PlatformClient, remote: list[RemoteOutput], job_dir: Path, url_for: Callable[[str], str]
) -> list[Output]:
    if not remote:
        raise PermanentError("the platform reported success but returned no output", kind="output")
    outputs: list[Output] = []
    for i, ro in enumerate(remote, 1):
        if ro.type == "text":
            text = ro.text if ro.text is not None else (ro.url or "")
            path = job_dir / f"result-{i}.txt"
            write_durable(path, text.encode("utf-8"), sync_dir=False)
            outputs.append(
                Output(
                    type="text",
                    path=str(path),
                    url=url_for(path.name),
                    text=text,
                    content_type="text/plain; charset=utf-8",
                    size=path.stat().st_size,
                )
            )
            continue
        d = client.download(ro, job_dir / f"result-{i}")
        outputs.append(
            Output(type=d.type, path=str(d.path), url=url_for(d.path.name), content_type=d.content_type, size=d.size)
        )
    return outputs
