"""Submit: build what the platform is sent from the job, its profile and the prepared photo."""

from __future__ import annotations

from pathlib import Path

from agent.config import Config, ProfileConfig
from agent.jobs.model import Job
from agent.platforms.base import PermanentError, SubmitRequest
from agent.prepare import prepare_upload


def build_request(job: Job, profile: ProfileConfig, config: Config) -> SubmitRequest:
    try:
        photo = Path(job.capture_path).read_bytes()
    except FileNotFoundError:
        raise PermanentError(f"the captured photo is missing: {job.capture_path}", kind="storage") from None
    upload = prepare_upload(photo, config.upload.max_edge, config.upload.jpeg_quality)
    params = {**profile.params, **{k: v for k, v in job.params.items() if k != "prompt"}}
    prompt = job.params.get("prompt", profile.prompt)
    return SubmitRequest(image=upload, image_name=f"{job.id}.jpg", profile=profile, prompt=prompt, params=params)
