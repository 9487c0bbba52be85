"""Result delay: how long after a task really ends on the platform the booth sees it finished, and what that
costs in polls, for tasks of 3, 10 and 30 s.

The simulator (over loopback) records when each task really ended and every poll it was asked. Three clients run
side by side in every round, 4 jobs each, so they meet the same machine load:

* the agent, the platform giving ``time_remained`` (EasyAI ``ai.generations``);
* the agent, on a second simulator that gives no ``time_remained`` (progress and this device's history only);
* the baseline: the loop in the Haiyi docs, "sleep 5 s, then check", started at a random phase.

Random phase: tasks take their length ±10 % (the simulator's jitter), the agent's triggers are spread over a
second, and the baseline's first check comes at a random point of its 5 s period. The first round of each length
starts with no history on the device. Delay = the time the client saw the task finished − the task's end;
polls/s = the task's polls / (seen finished − submitted).

    .venv/bin/python bench/bench_polling.py [--quick] [--json FILE]
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import KEY, Table, booth_config, median, parser, spread

from agent.commands import Command
from agent.config import load_config
from agent.core import Agent
from agent.jobs.model import JobState
from agent.platforms.base import SubmitRequest
from agent.simulator import SimConfig, Simulator

PER_ROUND = 4
BASELINE_SLEEP_S = 5.0


def seen_done(job: Any) -> tuple[float, float]:
    """(submitted, seen finished) from the job's history."""
    sub = next(e["ts"] for e in job.history if e["state"] == JobState.SUBMITTED.value)
    done = next(e["ts"] for e in job.history if e["state"] == JobState.DOWNLOADING.value)
    return sub, done


def polls_of(sim: Simulator, task_id: str) -> int:
    path = f"/v1/ai/result/{task_id}"
    return sum(1 for r in sim.board.requests() if r["path"] == path)


def task_end(sim: Simulator, task_id: str) -> float:
    return next(float(t["end"]) for t in sim.tasks() if str(t["task_id"]) == str(task_id))


def agent_round(agent: Agent, sim: Simulator, rng: random.Random, out: list[tuple[float, float]]) -> None:
    ids: list[str] = []
    for _ in range(PER_ROUND):
        time.sleep(rng.uniform(0, 1.0 / PER_ROUND))
        ids.append(agent.request(Command("capture", "button")).result(30)["job_id"])
    for jid in ids:
        job = agent.wait_for(jid, timeout=180)
        assert job.state == JobState.DONE, job.error
        sub, done = seen_done(job)
        tid = job.remote_task_id or ""
        out.append((done - task_end(sim, tid), polls_of(sim, tid) / max(1e-3, done - sub)))


def baseline_job(agent: Agent, sim: Simulator, phase: float, out: list[tuple[float, float]]) -> None:
    client = agent.clients["easy"]
    profile = agent.config.profile("p")
    t0 = time.time()
    tid = client.submit(SubmitRequest(_tiny_jpeg(), "b.jpg", profile, "x", {})).task_id or ""
    time.sleep(phase)
    while True:
        if client.poll(tid, profile.endpoint).finished:
            break
        time.sleep(BASELINE_SLEEP_S)
    done = time.time()
    out.append((done - task_end(sim, tid), polls_of(sim, tid) / max(1e-3, done - t0)))


_JPEG: list[bytes] = []


def _tiny_jpeg() -> bytes:
    if not _JPEG:
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (320, 240), (90, 120, 150)).save(buf, "JPEG")
        _JPEG.append(buf.getvalue())
    return _JPEG[0]


def run_length(length: float, rounds: int, sims: dict[str, Simulator], rng: random.Random) -> dict[str, list]:
    for sim in sims.values():
        sim.configure(latency=length)
    results: dict[str, list[tuple[float, float]]] = {"agent": [], "agent_no_eta": [], "baseline": []}
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        agents = {
            "agent": Agent(load_config(booth_config(Path(d1), sims["eta"].url, queue={"max_in_flight": PER_ROUND}))),
            "agent_no_eta": Agent(
                load_config(booth_config(Path(d2), sims["no_eta"].url, queue={"max_in_flight": PER_ROUND}))
            ),
        }
        for a in agents.values():
            a.start()
        try:
            for _ in range(rounds):
                threads = [
                    threading.Thread(target=agent_round, args=(agents["agent"], sims["eta"], rng, results["agent"])),
                    threading.Thread(
                        target=agent_round,
                        args=(agents["agent_no_eta"], sims["no_eta"], rng, results["agent_no_eta"]),
                    ),
                ] + [
                    threading.Thread(
                        target=baseline_job,
                        args=(agents["agent"], sims["eta"], rng.uniform(0, BASELINE_SLEEP_S), results["baseline"]),
                    )
                    for _ in range(3 * PER_ROUND)  # cheap, and its median needs samples: the phase is random
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        finally:
            for a in agents.values():
                a.stop()
    return results


def main() -> int:
    args = parser(__doc__).parse_args()
    plan = [(3.0, 2), (10.0, 1), (30.0, 1)] if args.quick else [(3.0, 4), (10.0, 3), (30.0, 2)]
    rng = random.Random(7)
    sims = {
        "eta": Simulator(SimConfig(port=0, api_keys=(KEY,), workers=32, seed=3)),
        "no_eta": Simulator(SimConfig(port=0, api_keys=(KEY,), workers=32, seed=4, quirks=("no_time_remained",))),
    }
    for s in sims.values():
        s.start()
    table = Table(
        "bench_polling",
        "Result delay and polls",
        [
            "task length (s)",
            "client",
            "jobs",
            "delay median (s)",
            "delay p25–p75 (s)",
            "vs baseline (x better)",
            "polls/s per job",
        ],
        note="Delay from the task's real end (simulator's record) to the client seeing it finished; baseline = "
        "the Haiyi docs' loop (sleep 5 s, check) at a random phase; all three run side by side in each round.",
    )
    try:
        for length, rounds in plan:
            res = run_length(length, rounds, sims, rng)
            base = median([d for d, _ in res["baseline"]])
            for name, label in (
                ("baseline", "baseline: sleep 5 s, check"),
                ("agent", "agent (platform gives time_remained)"),
                ("agent_no_eta", "agent (no time_remained: progress, history)"),
            ):
                delays = [d for d, _ in res[name]]
                rates = [r for _, r in res[name]]
                m = median(delays)
                table.add(length, label, len(delays), m, spread(delays), base / m if m > 0 else "-", median(rates))
                if length == 10.0 and name != "baseline":
                    table.goal(
                        f"{label}, 10 s task: delay < 0.25 s, >= 10x better, <= 0.75 polls/s",
                        f"{m:.3f} s, {base / m:.1f}x, {median(rates):.2f} polls/s",
                        m < 0.25 and base / m >= 10 and median(rates) <= 0.75,
                    )
    finally:
        for s in sims.values():
            s.stop()
    table.emit(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
