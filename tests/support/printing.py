"""A booth with printing on (the real Runtime: core, HTTP API, print service) and the photos the print tests use."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

from tests.support.proc import wait_until

VIVID = {  # keeps colours and geometry: what goes in is recognisable on the page
    "name": "vivid",
    "platform": "easy",
    "endpoint": "images.edits",
    "model": "vivid",
    "prompt": "p",
    "params": {"resolution": "1K", "n": 1},
}


def printer_config(queue: str, **over: Any) -> dict[str, Any]:
    return {"enabled": True, "queue": queue, "cooldown_s": 0, "max_prints_per_job": 0, "poll_interval_s": 0.3, **over}


def two_tone(size: tuple[int, int], first: str = "red", second: str = "blue") -> bytes:
    """A JPEG: `first` on the top half (portrait) or the left half (landscape), `second` on the other."""
    w, h = size
    im = Image.new("RGB", size, second)
    im.paste(Image.new("RGB", (w, h // 2) if h >= w else (w // 2, h), first), (0, 0))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95)
    return buf.getvalue()


@contextmanager
def booth(config_path: Path) -> Iterator[Any]:
    from agent.config import load_config
    from agent.runtime import Runtime

    rt = Runtime(load_config(config_path), gpio=False)
    rt.start()
    try:
        yield rt
    finally:
        rt.stop()


def done_job(agent: Any, image: bytes, profile: str = "vivid") -> Any:
    job_id = agent.capture_file(image, profile=profile)["job_id"]
    job = agent.wait_for(job_id, timeout=30)
    assert job.state.value == "done", job.error
    return job


def wait_print(agent: Any, print_id: str, states: tuple[str, ...] = ("printed",), timeout: float = 40.0) -> Any:
    store = agent.printer.store
    return wait_until(
        lambda: (r := store.get(print_id)) is not None and r.state.value in states and r,
        timeout=timeout,
        interval=0.1,
        what=f"print {print_id} to be {'/'.join(states)} (now {store.get(print_id)})",
    )
