"""Preview cost: CPU % of one core used by the daemon (`edge-agent run`, a separate process) while 0, 1 and 5
viewers watch `GET /api/preview.mjpg`, at the default preview settings (640 px long edge, 10 fps, quality 70),
synthetic camera 1920x1080. Baseline: 0 viewers (the idle daemon). The viewer counts are interleaved over
--rounds rounds; the median is reported. The viewers run in this process, so their own CPU is not counted.

    .venv/bin/python bench/bench_preview.py [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime


def watch(url: str, stop: threading.Event, frames: list[int]) -> None:
    import httpx

    with httpx.Client(timeout=10) as c, c.stream("GET", url) as r:
        for chunk in r.iter_bytes():
            frames[0] += chunk.count(b"--edgeagentframe")
            if stop.is_set():
                return


def measure(url: str, pid: int, viewers: int, seconds: float) -> tuple[float, int]:
    stop = threading.Event()
    counts = [[0] for _ in range(viewers)]
    threads = [threading.Thread(target=watch, args=(url, stop, counts[i]), daemon=True) for i in range(viewers)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # the producer starts, the first frames go out
    c0, t0, f0 = cpu_s(pid), time.monotonic(), sum(c[0] for c in counts)
    time.sleep(seconds)
    used = (cpu_s(pid) - c0) / (time.monotonic() - t0) * 100
    delivered = sum(c[0] for c in counts) - f0
    stop.set()
    for t in threads:
        t.join(5)
    time.sleep(2.5)  # the producer stops once nobody watches (IDLE_STOP_S)
    return used, delivered


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import tomli_w

    from tests.support.configs import KEY_ENV, TEST_KEY, base_config

    with tempfile.TemporaryDirectory() as d:
        cfg = base_config(Path(d), "http://127.0.0.1:9")
        cfg["camera"] = {"driver": "synthetic", "width": 1920, "height": 1080}
        path = Path(d) / "config.toml"
        path.write_text(tomli_w.dumps(cfg))
        exe = Path(sys.executable).parent / "edge-agent"
        env = {**os.environ, KEY_ENV: TEST_KEY, "PYTHONPATH": str(ROOT)}  # this tree, not an installed copy
        proc = subprocess.Popen(
            [str(exe), "run", "-c", str(path)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            info = Path(d) / "state" / "daemon.json"
            deadline = time.monotonic() + 30
            while not info.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            url = json.loads(info.read_text())["url"] + "/api/preview.mjpg"
            time.sleep(1.0)
            cpu: dict[int, list[float]] = {0: [], 1: [], 5: []}
            frames: dict[int, list[int]] = {0: [], 1: [], 5: []}
            for _ in range(args.rounds):
                for n in (0, 1, 5):
                    used, got = measure(url, proc.pid, n, args.seconds)
                    cpu[n].append(used)
                    frames[n].append(got)
        finally:
            proc.terminate()
            proc.wait(20)
    print(
        f"\nPreview cost: daemon CPU (% of one core), 640 px / 10 fps / q70, synthetic 1920x1080, "
        f"{args.seconds:g} s x {args.rounds} interleaved rounds\n"
    )
    print("| viewers | daemon CPU % | vs 0 viewers (points) | frames delivered per viewer per s |")
    print("|---|---|---|---|")
    base = statistics.median(cpu[0])
    for n in (0, 1, 5):
        c = statistics.median(cpu[n])
        fps = statistics.median(frames[n]) / n / args.seconds if n else 0.0
        print(f"| {n} | {c:.1f} | {c - base:+.1f} | {fps:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
