"""The daemon's memory does not keep growing: 200 jobs through `edge-agent run` (a child process, started as a user
starts it, with no MALLOC_* variables), against the simulator, at the default camera size (1920x1080) and upload
size. Resident memory is read from /proc after each quarter of the jobs, once they have all been delivered."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support.configs import TEST_KEY, base_config, merge, write_config
from tests.support.daemon import DaemonProcess
from tests.support.http import PROOF
from tests.support.sim import running_sim

JOBS = 200
PENDING = 8  # triggers ahead of deliveries, as a busy booth has
GROWTH_LIMIT_MB = 10.0  # from the first quarter's plateau to the end
RSS_LIMIT_MB = 75.0  # measured 58-62 MB; the goal is 80 (bench_daemon reports it): a regression fails here
THREAD_LIMIT = 24


def status(pid: int) -> tuple[float, int]:
    """(VmRSS in MB, threads) of a process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def drain(http: httpx.Client, ids: list[str], keep: int) -> list[str]:
    """Wait until at most `keep` of `ids` are unfinished; a failed job fails the test."""
    while len(ids) > keep:
        states = {j: http.get(f"/api/jobs/{j}").json()["state"] for j in ids}
        assert "failed" not in states.values(), states
        ids = [j for j, s in states.items() if s != "done"]
        time.sleep(0.02)
    return ids


def test_resident_memory_levels_off_over_200_jobs(tmp_path: Path) -> None:
    with running_sim(TEST_KEY, latency=0.05, workers=8) as sim:
        cfg = base_config(tmp_path, sim.url)
        cfg["camera"] = {"driver": "synthetic"}  # 1920x1080, the default
        cfg.pop("upload")  # the default upload size (2048 px long edge)
        path = write_config(tmp_path / "config.toml", merge(cfg, {"queue": {"max_in_flight": 4}}))
        daemon = DaemonProcess(path, tmp_path / "daemon.log")
        daemon.env = {k: v for k, v in daemon.env.items() if not k.startswith("MALLOC_")}  # as a user starts it
        url = daemon.start()
        assert daemon.proc is not None
        pid = daemon.proc.pid
        samples: list[tuple[float, int]] = []
        try:
            with httpx.Client(base_url=url, timeout=20, headers=PROOF) as http:
                ids: list[str] = []
                for i in range(1, JOBS + 1):
                    r = http.post("/api/capture", json={"profile": "cartoon"})
                    assert r.status_code == 202, r.text
                    ids = drain(http, ids + [r.json()["job_id"]], PENDING)
                    if i % (JOBS // 4) == 0:
                        drain(http, ids, 0)
                        ids = []
                        time.sleep(0.5)
                        samples.append(status(pid))
                mode = http.get("/api/state").json()["mode"]
        finally:
            daemon.stop()
    rss = [s[0] for s in samples]
    print(f"\nresident MB after each 50 jobs: {[round(x, 1) for x in rss]}, threads {[t for _, t in samples]}")
    assert max(t for _, t in samples) <= THREAD_LIMIT, samples
    assert rss[-1] - rss[0] < GROWTH_LIMIT_MB, f"resident MB after each 50 jobs: {rss}"
    assert max(rss) < RSS_LIMIT_MB, f"resident MB after each 50 jobs: {rss}"
    assert mode == "ready"
