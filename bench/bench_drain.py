"""Draining a backlog after an outage, against the built-in simulator over real HTTP.

Measures, in one run:
- the time to deliver N queued jobs, against the server-bound ideal ceil(N / gpu_workers) * task_latency;
- the latency (trigger → done) of a fresh guest's photo while the backlog drains, against the same photo on an
  idle agent (the baseline).
Prints a table of figures and ratios (1.00 = as good as the baseline / ideal).

The agent runs with its default poll settings (adaptive polling): a slot is free as soon as a poll sees its
task finished, so the drain is bound by the server, not by a poll interval. The endpoints alternate over --rounds
rounds; the median and the spread are reported.

    ./scripts/bench.sh            # or: .venv/bin/python bench/bench_drain.py [--quick] [--json FILE]
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tomli_w
from common import KEY, SimProcess, Table, median, parser, spread

from agent.commands import Command
from agent.config import load_config
from agent.core import Agent
from agent.jobs.model import JobState


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


FRESH = 3  # guests' photos taken while the backlog drains


def run(jobs: int, workers: int, latency: float, endpoint: str) -> dict[str, float]:
    sim = SimProcess(latency=latency, workers=workers)
    url = sim.url
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
            during = [fresh_latency(agent) for _ in range(FRESH)]
            while agent.store.count_in((JobState.DONE,)) < jobs + len(during):
                time.sleep(0.05)
            drain = time.monotonic() - t0
            counts = agent.store.counts()
            agent.stop()
        assert counts == {"done": jobs + len(during)}, counts
    finally:
        sim.stop()
    ideal = math.ceil((jobs + FRESH) / workers) * latency  # the guests' tasks take GPU time too
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
    ap = parser(__doc__)
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--workers", type=int, default=4, help="simulated GPU capacity")
    ap.add_argument("--latency", type=float, default=0.5, help="seconds per task on a GPU")
    ap.add_argument("--rounds", type=int, help="rounds per endpoint (default 3, --quick 1)")
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    res: dict[str, list[dict[str, float]]] = {"ai.generations": [], "images.edits": []}
    for _ in range(rounds):
        for endpoint in res:
            res[endpoint].append(run(args.jobs, args.workers, args.latency, endpoint))
    ideal = math.ceil((args.jobs + FRESH) / args.workers) * args.latency
    table = Table(
        "bench_drain",
        "Backlog drain",
        [
            "endpoint",
            "drain (s)",
            "server-bound ideal (s)",
            "drain / ideal",
            "spread of drain / ideal",
            "fresh trigger idle (s)",
            "fresh trigger during drain (s)",
        ],
        note=f"{args.jobs} photos queued during an outage, delivered through the simulator ({args.workers} GPU "
        f"workers x {args.latency} s per task, in its own process: ideal = ceil(({args.jobs} + {FRESH} guests' photos)/"
        f"{args.workers}) x {args.latency} s = "
        f"{ideal:.1f} s), max_in_flight {args.workers + 1} (one slot kept for a guest), default poll settings; "
        f"{rounds} round(s) per endpoint, interleaved; meanwhile a guest's fresh photo against the same photo on an "
        "idle agent.",
    )
    for endpoint, rs in res.items():
        ratios = [r["drain"] / r["ideal"] for r in rs]
        label = f"{endpoint} ({'async, polled' if endpoint == 'ai.generations' else 'sync'})"
        table.add(
            label,
            median([r["drain"] for r in rs]),
            ideal,
            median(ratios),
            spread(ratios),
            median([r["fresh_idle"] for r in rs]),
            median([r["fresh_during"] for r in rs]),
        )
        table.goal(f"{label}: {args.jobs}-job drain < 1.3x ideal", f"{median(ratios):.2f}x", median(ratios) < 1.3)
    table.emit(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
