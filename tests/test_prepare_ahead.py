"""The upload is prepared while the photo is saved (agent/steps/ahead.py): the platform gets the very bytes the
photo file would have given, made for the settings in force when the job is submitted, and no more than a couple
are ever kept."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from agent.jobs.model import JobState
from agent.steps.ahead import KEEP, PrepareAhead
from agent.steps.prepare import Orientation, prepare_upload


def photo(w: int = 640, h: int = 480, colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    im = Image.new("RGB", (w, h), colour)
    im.paste((20, 20, 220), (0, 0, w // 2, h // 3))  # a corner to tell the turns apart
    im.save(buf, "JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture
def ahead() -> Iterator[PrepareAhead]:
    with ThreadPoolExecutor(2) as pool:
        yield PrepareAhead(pool.submit)


SETTINGS = (320, 80, Orientation.of(90, True, None))


def test_the_early_upload_is_the_one_the_file_gives_and_is_taken_once(ahead: PrepareAhead) -> None:
    jpeg = photo()
    ahead.start("job-1", jpeg, SETTINGS)
    made = ahead.take("job-1", SETTINGS)
    assert made == prepare_upload(jpeg, 320, 80, orientation=SETTINGS[2])
    assert Image.open(io.BytesIO(made)).size == (240, 320)  # turned upright, then scaled
    assert ahead.take("job-1", SETTINGS) is None  # the submit after a retry prepares from the file


def test_other_settings_a_broken_photo_or_a_forgotten_job_give_nothing(ahead: PrepareAhead) -> None:
    ahead.start("job-1", photo(), SETTINGS)
    assert ahead.take("job-1", (512, 80, Orientation())) is None  # a reload changed [upload] meanwhile
    ahead.start("job-2", b"not a jpeg", SETTINGS)
    assert ahead.take("job-2", SETTINGS) is None  # the submit prepares from the file and reports the error
    ahead.start("job-3", photo(), SETTINGS)
    ahead.forget("job-3")  # the photo could not be saved
    assert ahead.take("job-3", SETTINGS) is None


def test_a_backlog_keeps_only_the_newest_few(ahead: PrepareAhead) -> None:
    for i in range(KEEP + 3):
        ahead.start(f"job-{i}", photo(colour=(i * 40, 0, 0)), SETTINGS)
    assert [ahead.take(f"job-{i}", SETTINGS) is not None for i in range(KEEP + 3)] == [False] * 3 + [True] * KEEP


def test_the_platform_receives_exactly_the_prepared_photo(make_agent, sim) -> None:
    agent = make_agent(upload={"max_edge": 200, "jpeg_quality": 70, "rotate": 90})
    from agent.commands import Command

    for _ in range(3):
        jid = agent.request(Command("capture", "button", profile="cartoon")).result(10)["job_id"]
        job = agent.wait_for(jid, timeout=30)
        assert job.state == JobState.DONE, job.error
        want = prepare_upload(Path(job.capture_path).read_bytes(), 200, 70, orientation=Orientation.of(90, False, None))
        (part,) = [r for r in sim.received() if r["endpoint"] == "images.edits"][-1]["parts"]
        assert part["sha256"] == hashlib.sha256(want).hexdigest()
        assert part["image"] == [150, 200]  # the 320x240 capture turned upright, then fitted in 200
    assert agent.scheduler.ahead.used == 3  # made while each photo was saved, not again from the file
