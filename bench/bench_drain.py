"""Draining a backlog after an outage, against the built-in simulator over real HTTP.

Measures, in one run:
- the time to deliver N queued jobs, against the server-bound ideal ceil(N / gpu_workers) * task_latency;
- the latency (trigger → done) of a fresh guest's photo while the backlog drains, against the same photo on an
  idle agent (the baseline).
Prints a table of figures and ratios (1.00 = as good as the baseline / ideal).

    ./scripts/bench.sh            # or: .venv/bin/python bench/bench_drain.py --jobs 500
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tomli_w

from agent.commands import Command
from agent.config import load_config
from agent.core import Agent
from agent.jobs.model import JobState
from agent.simulator import SimConfig, Simulator

KEY = "sk-bench"


def make_agent(tmp: Path, sim_url: str, endpoint: str, max_in_flight: int) -> Agent:
    os.environ["EDGE_AGENT_BENCH_KEY"] = KEY
    profile = {"name": "p", "platform": "easy", "endpoint": endpoint, "model": "cartoon", "prompt": "x"}
    cfg = {
        "device": {"id": "bench", "state_dir": str(tmp / "state"), "output_dir": str(tmp / "results")},
        "camera": {"driver": "synthetic", "width": 320, "height": 240},
        "upload": {"max_edge": 320},
        "platforms": {
            "easy": {
                "kind": "easyai",
                "base_url": sim_url,
                "api_key_env": "EDGE_AGENT_BENCH_KEY",
                "poll_interval_s": 0.05,
            }
        },
        "profiles": [profile],
        "http": {"listen": "127.0.0.1:0"},
        "queue": {"max_in_flight": max_in_flight, "min_free_disk_mb": 1},
    }
    p = tmp / "config.toml"
    p.write_bytes(tomli_w.dumps(cfg).encode())
    return Agent(load_config(p))


def fresh_latency(agent: Agent) -> float:
    t0 = time.monotonic()
    jid = agent.request(Command("capture", "button")).result(30)["job_id"]
    job = agent.wait_for(jid, timeout=120)
    assert job.state == JobState.DONE, job.error
    return time.monotonic() - t0


def run(jobs: int, workers: int, latency: float, endpoint: str) -> dict[str, float]:
    sim = Simulator(SimConfig(host="127.0.0.1", port=0, api_keys=(KEY,), latency=latency, workers=workers, seed=1))
    url = sim.start()
    max_in_flight = workers + 1  # the backlog may fill the GPUs; one slot stays for a guest
    try:
        # baseline: a fresh photo on an idle agent
        with tempfile.TemporaryDirectory() as d:
            idle = make_agent(Path(d), url, endpoint, max_in_flight)
            idle.start()
            base = statistics.median(fresh_latency(idle) for _ in range(5))
            idle.stop()

        with tempfile.TemporaryDirectory() as d:
            agent = make_agent(Path(d), url, endpoint, max_in_flight)
            # the backlog: photos taken while the platform was away (priority 0 after their first failure)
            for _ in range(jobs):
                agent.request(Command("capture", "button")).result(30)
            agent.lifecycle.demote("easy")  # as the scheduler does when a platform goes away
            t0 = time.monotonic()
            agent.start()
            while agent.store.count_in((JobState.DONE,)) < jobs * 0.4:
                time.sleep(0.05)
            during = [fresh_latency(agent) for _ in range(3)]
            while agent.store.count_in((JobState.DONE,)) < jobs + len(during):
                time.sleep(0.05)
            drain = time.monotonic() - t0
            counts = agent.store.counts()
            agent.stop()
        assert counts == {"done": jobs + len(during)}, counts
    finally:
        sim.stop()
    ideal = math.ceil(jobs / workers) * latency
    return {
        "jobs": jobs,
        "workers": workers,
        "latency": latency,
        "ideal": ideal,
        "drain": drain,
        "fresh_idle": base,
        "fresh_during": statistics.median(during),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--workers", type=int, default=8, help="simulated GPU capacity")
    ap.add_argument("--latency", type=float, default=0.25, help="seconds per task on a GPU")
    args = ap.parse_args()
    rows = []
    for endpoint in ("images.edits", "ai.generations"):
        r = run(args.jobs, args.workers, args.latency, endpoint)
        rows.append((endpoint, r))
    print(f"\nbacklog drain: {args.jobs} jobs, simulator with {args.workers} GPU workers x {args.latency}s per task\n")
    print(
        "| endpoint | drain (s) | server-bound ideal (s) | drain / ideal | fresh trigger idle (s) "
        "| fresh trigger during drain (s) | during / idle |"
    )
    print("|---|---|---|---|---|---|---|")
    for endpoint, r in rows:
        print(
            f"| {endpoint} | {r['drain']:.1f} | {r['ideal']:.1f} | {r['drain'] / r['ideal']:.2f} "
            f"| {r['fresh_idle']:.2f} | {r['fresh_during']:.2f} | {r['fresh_during'] / r['fresh_idle']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
