"""The agent's own time per job: a trigger to the result on disk through the agent (capture made durable, the
upload prepared, submit, download, job.json), minus a bare httpx client doing the same calls against the same
instantly answering simulator (latency 0, sync images.edits): it uploads the very JPEGs the agent uploaded (the
agent's captures, prepared as the agent prepares them: the simulator's work depends on the picture) and downloads
the output to a file. The simulator runs in its own process, as a platform does.

Jobs run one after another; agent and bare batches alternate over --rounds rounds. Where the agent's time goes is
read from each job's history (timestamps of its moves): trigger -> captured (the camera), -> submitting (the photo
and job.json made durable, the row committed, the scheduler's pick; the upload is prepared meanwhile), ->
downloading (the submit request), -> done (download, job.json, present).

    .venv/bin/python bench/bench_overhead.py [--quick] [--json FILE]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import KEY, SimProcess, Table, booth_config, median, parser, spread

from agent.commands import Command
from agent.config import load_config
from agent.core import Agent
from agent.jobs.model import JobState
from agent.steps.prepare import prepare_upload

STAGES = ("captured", "submitting", "downloading", "done")
RAM = "/dev/shm" if Path("/dev/shm").is_dir() else None


def agent_batch(
    agent: Agent,
    n: int,
    times: list[float],
    stages: dict[str, list[float]],
    uploads: list[bytes],
    cpu: list[float] | None = None,
) -> None:
    up = agent.config.upload
    used = 0.0
    for _ in range(n):
        t0, c0 = time.time(), time.process_time()
        jid = agent.request(Command("capture", "button")).result(30)["job_id"]
        job = agent.wait_for(jid, timeout=30)
        t1 = time.time()
        used += time.process_time() - c0  # the process's CPU (every thread) while the job ran
        assert job.state == JobState.DONE, job.error
        times.append(t1 - t0)
        prev = t0
        for st in STAGES:
            ts = next(e["ts"] for e in job.history if e["state"] == st)
            stages[st].append(ts - prev)
            prev = ts
        uploads.append(prepare_upload(Path(job.capture_path).read_bytes(), up.max_edge, up.jpeg_quality))
    if cpu is not None:
        cpu.append(used / n)


def bare_batch(url: str, uploads: list[bytes], out: Path, times: list[float], cpu: list[float] | None = None) -> None:
    c0 = time.process_time()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as c:
        for i, image in enumerate(uploads):
            t0 = time.time()
            r = c.post(
                "/v1/images/edits",
                data={"model": "cartoon", "prompt": "x"},
                files={"image": ("p.jpg", image, "image/jpeg")},
            )
            r.raise_for_status()
            link = r.json()["data"][0]["url"]
            (out / f"r{i}.png").write_bytes(c.get(link).content)
            times.append(time.time() - t0)
    if cpu is not None:
        cpu.append((time.process_time() - c0) / max(1, len(uploads)))


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--jobs", type=int, help="jobs per batch (default 30, --quick 10)")
    ap.add_argument("--rounds", type=int, help="rounds (default 3, --quick 1)")
    args = ap.parse_args()
    n = args.jobs or (10 if args.quick else 30)
    rounds = args.rounds or (1 if args.quick else 3)
    sim = SimProcess(latency=0.0, workers=8)
    agent_t: list[float] = []
    ram_t: list[float] = []
    bare_t: list[float] = []
    cpu: dict[str, list[float]] = {"agent": [], "ram": [], "bare": []}
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    try:
        # the same booth twice: its state and results on the disk, and in RAM (/dev/shm: a sync costs nothing
        # there), to tell the disk's share of the difference from the rest
        with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory(dir=RAM) as r:
            agent = Agent(load_config(booth_config(Path(d), sim.url, endpoint="images.edits")))
            in_ram = Agent(load_config(booth_config(Path(r), sim.url, endpoint="images.edits")))
            agent.start()
            in_ram.start()
            try:
                warm: list[bytes] = []
                agent_batch(agent, 3, [], {s: [] for s in STAGES}, warm)  # warm-up: imports, connections
                agent_batch(in_ram, 3, [], {s: [] for s in STAGES}, [])
                bare_batch(sim.url, warm, Path(d), [])
                for _ in range(rounds):
                    uploads: list[bytes] = []
                    agent_batch(agent, n, agent_t, stages, uploads, cpu["agent"])
                    bare_batch(sim.url, uploads, Path(d), bare_t, cpu["bare"])
                    agent_batch(in_ram, n, ram_t, {s: [] for s in STAGES}, [], cpu["ram"])
            finally:
                agent.stop()
                in_ram.stop()
    finally:
        sim.stop()
    ms = 1000.0
    own = (median(agent_t) - median(bare_t)) * ms
    own_ram = (median(ram_t) - median(bare_t)) * ms
    table = Table(
        "bench_overhead",
        "Per-job overhead",
        ["path", "per job (ms), median", "p25–p75 (ms)", "CPU per job (ms)"],
        note=f"{n} jobs per batch x {rounds} round(s), one at a time, simulator answering at once (images.edits, "
        "320x240 synthetic camera); the agent's stages are read from the jobs' histories.",
    )

    def path(label: str, times: list[float], cpu_s: list[float]) -> None:
        table.add(label, median(times) * ms, spread([x * ms for x in times]), median(cpu_s) * ms)

    path("bare httpx client (baseline): upload the agent's JPEGs, download to a file", bare_t, cpu["bare"])
    path("agent: trigger to result on disk", agent_t, cpu["agent"])
    table.add("agent's own time (difference)", own, "-", "-")
    labels = {
        "captured": "  of which: trigger -> captured (the camera)",
        "submitting": "  captured -> submitting (photo and job.json made durable, row committed, pick; upload prepared meanwhile)",
        "downloading": "  submitting -> task done (the submit request)",
        "done": "  task done -> done (download, job.json, present)",
    }
    for st in STAGES:
        table.add(labels[st], median(stages[st]) * ms, spread([x * ms for x in stages[st]]), "-")
    path("the same agent, state and results in RAM (/dev/shm: the disk's syncs cost nothing)", ram_t, cpu["ram"])
    table.add("  its own time (difference): the agent without the disk", own_ram, "-", "-")
    table.goal("agent's own time per job < 6 ms, durability kept", f"{own:.1f} ms", own < 6.0)
    table.emit(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
