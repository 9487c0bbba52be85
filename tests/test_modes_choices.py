"""Choices change what is sent (the scheduler's own build_request, a real client, the simulator over HTTP); static
uploads are reused by content; a task the platform rejects while queued is submitted again, within the deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from agent.config import load_config
from agent.jobs.model import Job, JobState
from agent.jobs.retry import RetryPolicy
from agent.platforms import make_client
from agent.platforms.errors import PermanentError, TransientError
from agent.simulator import Simulator
from agent.steps.prepare import build_request
from tests.support.examples import ASSETS, DEMO_KEY, example, sha
from tests.support.proc import run_cli
from tests.support.sim import running_sim


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with running_sim(DEMO_KEY, latency=0.2, workers=4) as s:
        yield s


def job_for(tmp_path: Path, profile: str, choice: str | None) -> Job:
    photo = tmp_path / "capture.jpg"
    Image.new("RGB", (640, 480), (120, 80, 60)).save(photo)
    now = time.time()
    return Job("j1", profile, "kiosk", JobState.CAPTURED, now, now, str(photo), choice=choice)


def send(cfg_path: Path, job: Job) -> Any:
    loaded = load_config(cfg_path)
    cfg = loaded.config
    prof = cfg.profile(job.profile)
    client = make_client(prof.platform, cfg.platforms[prof.platform], loaded.secrets.platform_keys.get(prof.platform))
    try:
        return client, client.submit(build_request(job, prof, cfg.upload.max_edge, cfg.upload.jpeg_quality))
    finally:
        client.close()


def test_a_choice_replaces_the_garment_of_an_edit(sim: Simulator, tmp_path: Path) -> None:
    send(example("easyai-tryon-edits.toml", sim, tmp_path), job_for(tmp_path, "tryon", "blue"))
    (got,) = [r for r in sim.received() if r["endpoint"] == "images.edits"]
    assert [p["sha256"] for p in got["parts"][1:2]] == [sha(ASSETS / "dress-blue.png")]
    assert got["parts"][2]["name"] == "mask"  # the profile's mask stays


def test_a_choice_sets_an_app_file_and_a_prompt(sim: Simulator, tmp_path: Path) -> None:
    send(example("haiyi-app.toml", sim, tmp_path), job_for(tmp_path, "tryon-app", "blue"))
    send(example("easyai-poster.toml", sim, tmp_path), job_for(tmp_path, "poster", "mountains"))
    app = next(r for r in sim.received() if r["endpoint"] == "apps.run")
    assert app["parts"][1]["name"] == "garment_image" and app["parts"][1]["sha256"] == sha(ASSETS / "dress-blue.png")
    poster = next(r for r in sim.received() if r["endpoint"] == "images.generations")
    assert poster["json"]["prompt"] == "a retro travel poster of snowy mountains"


def test_an_unknown_choice_fails_the_job_with_the_known_ones(sim: Simulator, tmp_path: Path) -> None:
    cfg = load_config(example("easyai-tryon-edits.toml", sim, tmp_path)).config
    with pytest.raises(PermanentError) as e:
        build_request(job_for(tmp_path, "tryon", "green"), cfg.profile("tryon"), 1024, 90)
    assert str(e.value) == "unknown choice 'green' for profile 'tryon' (choices: red, blue)"
    with pytest.raises(KeyError):
        cfg.profile("tryon").choice("green")


def test_static_workflow_files_are_uploaded_once_per_content(sim: Simulator, tmp_path: Path) -> None:
    loaded = load_config(example("haiyi-workflow.toml", sim, tmp_path))
    cfg = loaded.config
    prof = cfg.profile("tryon-workflow")
    client = make_client("haiyi", cfg.platforms["haiyi"], loaded.secrets.platform_keys.get("haiyi"))
    try:
        for _ in range(2):
            job = job_for(tmp_path, prof.name, None)
            client.submit(build_request(job, prof, 1024, 90))
    finally:
        client.close()
    uploads = [r["parts"][0]["format"] for r in sim.received() if r["endpoint"] == "workflow.upload"]
    assert uploads == ["JPEG", "PNG", "JPEG"]  # the garment once, each job's photo every time
    wfs = [r["workflow"] for r in sim.received() if r["endpoint"] == "workflow.submit"]
    assert wfs[0]["74"]["inputs"]["image"] == wfs[1]["74"]["inputs"]["image"]


def test_a_task_rejected_while_queued_is_submitted_again(tmp_path: Path) -> None:
    from tests.support.configs import TEST_KEY, base_config, write_config

    with running_sim(TEST_KEY, latency=0.2) as base_sim:
        base_sim.configure(reject_polls=1)
        cfg = write_config(tmp_path / "c.toml", base_config(tmp_path, base_sim.url))
        r = run_cli("once", "-c", str(cfg), "--profile", "oil", "--json")
        tasks = [t for t in base_sim.tasks() if t["endpoint"] == "ai.generations"]
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["state"] == "done"
    assert [t["state"] for t in tasks] == ["cancelled", "success"]  # the dropped task, then the new one
    history = json.loads(Path(out["result_dir"], "job.json").read_text())["history"]
    notes = [h.get("note") or "" for h in history]
    assert any(n.startswith(f"task {tasks[0]['task_id']} rejected by the platform; submitting again") for n in notes)


def test_the_rejected_rule_in_the_retry_policy() -> None:
    policy = RetryPolicy(base_s=2.0, cap_s=60.0)
    dropped = TransientError(
        "EasyAI rejected the queued task (it will not run): queue over limit", kind="task_rejected"
    )
    d = policy.decide(dropped, 1, "poll", time_left_s=600)
    assert d.retry and d.resubmit and d.wait_kind == "rate_limit"
    late = policy.decide(dropped, 1, "poll", time_left_s=0.1)
    assert not late.retry
    assert late.reason == (
        "the platform would not take the task before the job's deadline (task_deadline_s): "
        "EasyAI rejected the queued task (it will not run): queue over limit"
    )
    refused = TransientError("queue over limit", kind="rejected")
    assert policy.decide(refused, 1, "submit").retry  # no task ever existed: waits like an offline platform
    assert not policy.decide(refused, 2, "submit", time_left_s=0.0).retry


def test_polls_carry_step_eta_and_queue_position(sim: Simulator, tmp_path: Path) -> None:
    """What a guest's progress line reads: Haiyi's current node title, EasyAI's time_remained and queue."""
    sim.configure(latency=1.5, workers=1)
    seen: dict[str, set[Any]] = {"step": set(), "eta": set(), "queue": set()}
    for name, prof_name in (("haiyi-app.toml", "tryon-app"), ("easyai-workflow.toml", "beach")):
        loaded = load_config(example(name, sim, tmp_path))
        prof = loaded.config.profile(prof_name)
        plat = loaded.config.platforms[prof.platform]
        client = make_client(prof.platform, plat, loaded.secrets.platform_keys.get(prof.platform))
        try:
            ids = [
                client.submit(build_request(job_for(tmp_path, prof_name, None), prof, 1024, 90)).task_id for _ in "ab"
            ]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                st = [client.poll(str(i), prof.endpoint) for i in ids]
                seen["step"] |= {s.step for s in st}
                seen["eta"] |= {s.eta_s is not None for s in st if prof.platform == "easy"}
                seen["queue"] |= {s.queue_position for s in st if prof.platform == "easy"}
                if all(s.finished for s in st):
                    break
                time.sleep(0.1)
        finally:
            client.close()
    assert {"KSampler", "VAE Decode"} <= seen["step"]  # Haiyi curr_node.title while running
    assert seen["eta"] == {True} and 1 in seen["queue"]  # EasyAI time_remained, and the second task waits
