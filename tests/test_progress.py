"""Progress a guest can read: the stage, percent, node title, queue position and ETA of a job, as the event stream
(SSE over real HTTP), MQTT `B/events` (a real Mosquitto), `/api/jobs/<id>` and `edge-agent once` show them; the
ETA from this device's own history; node warnings kept for the technician. Against the simulator over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.commands import Command
from agent.jobs.eta import MIN_RUNS, EtaModel
from agent.jobs.progress import PROGRESS_KEYS
from tests.support.configs import base_config
from tests.support.http import PROOF
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt import Booth as MqttBooth
from tests.support.mqtt import Watcher
from tests.support.proc import run_cli, run_on_tty

NODE_TITLES = {"Load Image", "KSampler", "VAE Decode", "Save Image"}  # the simulator's workflow nodes


@pytest.fixture
def slow_sim(sim) -> Iterator[Any]:
    """Tasks that run long enough to be seen moving through their nodes."""
    sim.configure(latency=1.2)
    yield sim
    sim.configure(latency=0.2, quirks=frozenset())


def _sse_job_events(url: str, started: threading.Event, out: list[tuple[str, dict[str, Any]]]) -> None:
    """Read the event stream until a job ends; keep every `job.*` event."""
    with httpx.stream("GET", f"{url}/api/events", timeout=30) as r:
        etype = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                etype = line[7:]
            elif line.startswith("data: ") and etype:
                if etype == "agent.state":
                    started.set()
                elif etype.startswith("job."):
                    out.append((etype, json.loads(line[6:])))
                    if etype in ("job.done", "job.failed"):
                        return


def _stages(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    seq: list[str] = []
    for _, d in events:
        if not seq or seq[-1] != d["stage"]:
            seq.append(d["stage"])
    return seq


def test_progress_of_a_haiyi_task_over_sse_and_the_api(api, slow_sim) -> None:
    agent, server = api
    events: list[tuple[str, dict[str, Any]]] = []
    started = threading.Event()
    reader = threading.Thread(target=_sse_job_events, args=(server.url, started, events), daemon=True)
    reader.start()
    assert started.wait(10)
    with httpx.Client(base_url=server.url, timeout=10, headers=PROOF) as http:
        job_id = http.post("/api/capture", json={"profile": "tryon"}).json()["job_id"]
        running = None
        while running is None or running["stage"] != "done":
            running = http.get(f"/api/jobs/{job_id}").json()
            assert set(PROGRESS_KEYS) <= set(running)  # every key, every time (null: not known)
            if running["step"] is not None:
                break
            time.sleep(0.02)
        assert running["stage"] == "running" and running["step"] in NODE_TITLES
    reader.join(20)
    assert events[-1][0] == "job.done"
    assert _stages(events) == ["queued", "uploading", "running", "downloading", "done"]
    kinds = [t for t, _ in events]
    assert kinds[:3] == ["job.captured", "job.submitting", "job.submitted"] and "job.progress" in kinds

    moving = [d for t, d in events if t == "job.progress"]
    steps = [d["step"] for d in moving if d.get("step")]
    assert set(steps) <= NODE_TITLES and len(set(steps)) >= 2  # the guest sees the work move from node to node
    percents = [d["progress"] for d in moving if d.get("progress") is not None]
    assert percents == sorted(percents) and 0 < percents[-1] < 100
    done = events[-1][1]
    assert done["progress"] == 100 and "step" not in done and "eta_s" not in done
    final = agent.store.get(job_id)
    assert (final.stage, final.step, final.eta_s, final.queue_position) == ("done", None, None, None)


def test_progress_on_mqtt_events(sim, tmp_path: Path) -> None:
    sim.configure(latency=0.8)
    broker = Mosquitto(tmp_path / "broker")
    booth = w = None
    try:
        raw = base_config(tmp_path, sim.url)
        raw["mqtt"] = {"enabled": True, "host": "127.0.0.1", "port": broker.port, "topic_prefix": "pr"}
        w = Watcher(broker.port, ["pr/+/events"])
        booth = MqttBooth(raw, tmp_path)
        w.publish(f"{booth.B}/cmd/capture", {"request_id": "p1", "profile": "tryon"})
        w.wait(lambda m: m.json()["type"] == "job.done", timeout=20)
        evs = [m.json() for m in w.on(f"{booth.B}/events")]
        for e in evs:
            assert set(PROGRESS_KEYS) <= set(e), e  # MQTT always carries the whole progress object
        assert _stages([("", e) for e in evs]) == ["queued", "uploading", "running", "downloading", "done"]
        assert any(e["type"] == "job.progress" and e["step"] in NODE_TITLES for e in evs)
    finally:
        sim.configure(latency=0.2)
        if booth is not None:
            booth.close()
        if w is not None:
            w.close()
        broker.stop()


def test_eta_from_this_devices_history(make_agent, sim) -> None:
    sim.configure(latency=0.6)
    try:
        agent = make_agent()
        sub = agent.events.subscribe(maxsize=10_000)
        for _ in range(MIN_RUNS):
            jid = agent.request(Command("capture", "cli", profile="tryon")).result(10)["job_id"]
            first = agent.wait_for(jid, 20)
            assert first.state.value == "done"
            if agent.scheduler.eta.typical("tryon") is None:
                assert first.eta_s is None  # no history yet: no guess
        typical = agent.scheduler.eta.typical("tryon")
        assert typical is not None and 0.5 < typical < 10
        assert len(EtaModel(agent.store).runs("tryon")) == MIN_RUNS  # kept in the store, not only in memory

        # a slower task than usual: the polls (few, with adaptive polling) see it running, and the ETA counts down
        sim.configure(latency=2.5)
        jid = agent.request(Command("capture", "cli", profile="tryon")).result(10)["job_id"]
        agent.wait_for(jid, 20)
        mine = [e for e in iter(lambda: sub.get(timeout=0.5), None) if e.data.get("job_id") == jid]
        captured = next(e for e in mine if e.type == "job.captured")
        assert captured.data["eta_s"] == pytest.approx(typical)
        etas = [e.data["eta_s"] for e in mine if e.type == "job.progress" and "eta_s" in e.data]
        assert etas and etas == sorted(etas, reverse=True) and etas[-1] >= 1  # it counts down, never below 1 s
        assert "eta_s" not in mine[-1].data and mine[-1].type == "job.done"

        # EasyAI says how long is left itself (time_remained): that wins over a history it does not have
        jid = agent.request(Command("capture", "cli", profile="oil")).result(10)["job_id"]
        agent.wait_for(jid, 20)
        oil = [e.data for e in iter(lambda: sub.get(timeout=0.5), None) if e.data.get("job_id") == jid]
        assert agent.scheduler.eta.typical("oil") is None
        assert any(d.get("eta_s") is not None for d in oil if d.get("stage") == "running")
    finally:
        sim.configure(latency=0.2)


def test_node_warnings_go_to_the_technician_not_the_guest(make_agent, sim) -> None:
    sim.configure(quirks={"node_warnings"})
    try:
        agent = make_agent()
        sub = agent.events.subscribe(maxsize=10_000)
        jid = agent.request(Command("capture", "cli", profile="tryon")).result(10)["job_id"]
        job = agent.wait_for(jid, 20)
        assert job.state.value == "done" and job.error is None
        notes = [h.get("note", "") for h in job.history]
        assert any(n.startswith("node warnings: FaceDetailer: Warning: no face detected") for n in notes)
        seen = [e.data for e in iter(lambda: sub.get(timeout=0.5), None)]
        assert "FaceDetailer" not in json.dumps(seen)
        assert "FaceDetailer" in Path(job.result_dir, "job.json").read_text()  # job.json keeps it for later
    finally:
        sim.configure(quirks=frozenset())


def test_once_json_and_the_terminal_line(config_file, sim) -> None:
    cfg = config_file()
    r = run_cli("once", "-c", str(cfg), "--profile", "tryon", "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and {k: out[k] for k in PROGRESS_KEYS} == {
        "progress": 100,
        "stage": "done",
        "step": None,
        "queue_position": None,
        "eta_s": None,
    }

    sim.configure(latency=1.0)
    try:
        code, screen = run_on_tty("once", "-c", str(cfg), "--profile", "tryon")
        assert code == 0
    finally:
        sim.configure(latency=0.2)
    assert "queued" in screen and "running" in screen and "\r" in screen
    assert any(title in screen for title in NODE_TITLES)  # the node the platform is on


def test_a_sync_endpoint_reads_running_while_it_waits_for_the_picture() -> None:
    """images.edits answers only with the result: 20-60 s of "sending your photo" would look stuck to a guest."""
    from agent.jobs.model import JobState
    from agent.jobs.progress import stage_of

    assert stage_of(JobState.SUBMITTING, None, "images.edits") == "running"
    assert stage_of(JobState.SUBMITTING, None, "images.generations") == "running"
    assert stage_of(JobState.SUBMITTING, None, "ai.generations") == "uploading"  # async: a task id comes back fast
    assert stage_of(JobState.SUBMITTING, None, None) == "uploading"
