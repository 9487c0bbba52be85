"""Capture: take the photo and make it durable before anyone is told it exists."""

from __future__ import annotations

import re
import secrets
import shutil
import uuid
from pathlib import Path
from typing import Any

from agent import clock
from agent.commands import CommandError, is_remote
from agent.config import Config, ProfileConfig
from agent.durable import make_dirs_durable, write_durable
from agent.jobs.model import PRIORITY_BACKLOG, PRIORITY_GUEST, PRIORITY_REMOTE, Job, JobState
from agent.results import CAPTURE_NAME, ResultLayout

# what a remote value may not look like: a URL (scheme://, or a scheme that reads local data), an absolute, home,
# UNC or relative path, or a climb out of a folder anywhere in it
_URLISH = re.compile(
    r"(^(file|data|javascript|ftp|https?|s3|gs|smb):|://|^[/~\\]|^\.\.?[/\\]|\.\.[/\\]|^[a-z]:[/\\])", re.I
)
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060\ufeff]")
_SCALARS = (str, int, float, bool)


def check_remote_params(profile: ProfileConfig, params: Any) -> dict[str, Any]:
    """A remote trigger may set only the params its profile lists in `remote_params`, and never a path or URL."""
    if params in (None, {}):
        return {}
    if not isinstance(params, dict):
        raise CommandError("bad_request", "params must be an object")
    allowed = set(profile.remote_params)
    out: dict[str, Any] = {}
    for k, v in params.items():
        if k not in allowed:
            listed = ", ".join(sorted(allowed)) or "none"
            raise CommandError(
                "bad_request", f"param {k!r} may not be set remotely (profile {profile.name!r} allows: {listed})"
            )
        if not isinstance(v, _SCALARS) or v is None:
            raise CommandError("bad_request", f"param {k!r} must be a string, number or boolean")
        if isinstance(v, str):
            if len(v) > 2000:
                raise CommandError("bad_request", f"param {k!r} is longer than 2000 characters")
            if _INVISIBLE.search(v):
                raise CommandError("bad_request", f"param {k!r} contains control or invisible characters")
            if _URLISH.search(v.strip()):
                raise CommandError(
                    "bad_request", f"param {k!r} looks like a path or URL; those are never accepted remotely"
                )
        out[k] = v
    return out


def free_disk_mb(path: Path) -> float:
    p = path
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free / 1_048_576


def check_disk(config: Config) -> None:
    need = config.queue.min_free_disk_mb
    for d in {config.device.state_dir, config.device.results_dir}:
        free = free_disk_mb(d)
        if free < need:
            raise CommandError(
                "disk_full",
                f"storage full: {free:.1f} MB free in {d}, at least {need} MB needed (queue.min_free_disk_mb); "
                "new photos are refused until space is freed, queued photos are kept",
            )


def new_job_id() -> str:
    return str(uuid.uuid4())


def store_capture(
    layout: ResultLayout,
    jpeg: bytes,
    *,
    profile: ProfileConfig,
    source: str,
    params: dict[str, Any],
    request_id: str | None,
    backlog: bool = False,
    choice: str | None = None,
    eta_s: float | None = None,
    job_id: str | None = None,
) -> Job:
    """Write capture.jpg durably and describe the new job; `Lifecycle.captured` then writes its first job.json and
    commits the row (Agent._capture). Nothing half-written stays behind on failure."""
    now = clock.now()
    job_id = job_id or new_job_id()
    job_dir = layout.job_dir(job_id, now)
    make_dirs_durable(job_dir)
    capture = job_dir / CAPTURE_NAME
    try:
        write_durable(capture, jpeg, sync_dir=False)
    except OSError:
        shutil.rmtree(job_dir, ignore_errors=True)  # nothing half-written stays behind
        raise
    job = Job(
        id=job_id,
        profile=profile.name,
        source=source,
        state=JobState.CAPTURED,
        created_at=now,
        updated_at=now,
        capture_path=str(capture),
        platform=profile.platform,
        params=params,
        choice=choice,  # an id checked against the profile's choices (agent/choices.py), never a path
        share_token=secrets.token_urlsafe(16),  # the job's share page (/share/<token>): unguessable, not the job id
        eta_s=eta_s,
        request_id=request_id,
        result_dir=str(job_dir),
        history=[{"ts": round(now, 3), "state": "captured"}],
        # taken while its platform is away: the next guest goes first; remote captures after a person's
        priority=PRIORITY_BACKLOG if backlog else (PRIORITY_REMOTE if is_remote(source) else PRIORITY_GUEST),
        capture_bytes=len(jpeg),
    )
    return job


MAX_GIVEN_PIXELS = 50_000_000  # larger than any camera a booth uses; beyond it a file is refused, not decoded


def ensure_jpeg(data: bytes) -> bytes:
    """A given photo (``once --image``) checked whole before it is queued: a JPEG passes through, any other image
    Pillow reads is converted; a non-image, a truncated file or an absurdly large one is refused."""
    import io
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if w * h > MAX_GIVEN_PIXELS:
                    raise CommandError(
                        "bad_request",
                        f"the image is too large ({w}x{h}, more than {MAX_GIVEN_PIXELS // 1_000_000} megapixels)",
                    )
                im.load()  # a truncated file fails here, not later in the queue
                if im.format == "JPEG":
                    return data
                rgb = ImageOps.exif_transpose(im).convert("RGB")
                out = io.BytesIO()
                rgb.save(out, "JPEG", quality=95)
                return out.getvalue()
    except UnidentifiedImageError:
        raise CommandError("bad_request", "not an image (Pillow cannot identify it)") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise CommandError("bad_request", "the image is too large to decode safely") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise CommandError("bad_request", f"the image cannot be read: {e}") from None
