"""The daemon as a user starts it (`edge-agent run`, a child process, no MALLOC_* variables), on the simulator over
loopback, default camera and upload sizes (synthetic 1920x1080 camera, 2048 px uploads):

* start to READY: from exec to the READY=1 it sends systemd (this bench listens on NOTIFY_SOCKET); baseline: the
  interpreter importing the agent's command and exiting (what any start pays);
* idle CPU: % of one core over --idle seconds after READY, nothing happening;
* resident memory after N jobs (8 triggers ahead of deliveries, all delivered, then 1 s of rest); baseline: the
  resident memory at READY;
* burst: 100 triggers at the same instant, each on its own connection, from 100 loopback addresses (as 100
  phones), then from one (a script on the device itself): every one must be answered, 202 accepted or refused with a status and Retry-After; a reset or a
  broken pipe is a failure.

With --before DIR the same is measured for another source tree (e.g. the code before a change), interleaved with
this one, round by round.

    .venv/bin/python bench/bench_daemon.py [--quick] [--json FILE] [--before DIR]
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import KEY, ROOT, Daemon, Table, booth_config, fmt, median, parser, spread

from agent.simulator import SimConfig, Simulator

PROOF = {"X-Edge-Agent": "1"}
BURST = 100
PENDING = 8


def run_jobs(url: str, n: int) -> None:
    with httpx.Client(base_url=url, timeout=30, headers=PROOF) as http:
        ids: list[str] = []
        for i in range(n):
            r = http.post("/api/capture", json={})
            if r.status_code != 202:
                time.sleep(0.05)
                continue
            ids.append(r.json()["job_id"])
            while len(ids) >= PENDING or (i == n - 1 and ids):
                ids = [j for j in ids if http.get(f"/api/jobs/{j}").json()["state"] not in ("done", "failed")]
                time.sleep(0.02)


def one_trigger(host: str, port: int, source: str, gate: threading.Barrier, out: list[str]) -> None:
    body = b"{}"
    req = (
        f"POST /api/capture HTTP/1.1\r\nHost: {host}:{port}\r\nX-Edge-Agent: 1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    try:
        s = socket.socket()
        s.settimeout(30)
        s.bind((source, 0))
        gate.wait()
        s.connect((host, port))
        s.sendall(req)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
    except OSError as e:
        out.append(type(e).__name__)
        return
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    if not head or not head[0].startswith("HTTP/1.1 "):
        out.append("no answer")
        return
    status = head[0].split()[1]
    retry = any(h.lower().startswith("retry-after:") for h in head[1:])
    out.append(status if status == "202" else f"{status}{' + Retry-After' if retry else ''}")


def burst(url: str, one_address: bool) -> dict[str, int]:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    gate = threading.Barrier(BURST)
    out: list[str] = []
    threads = [
        threading.Thread(
            target=one_trigger, args=(host, int(port), "127.0.0.1" if one_address else f"127.0.1.{i + 1}", gate, out)
        )
        for i in range(BURST)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts: dict[str, int] = {}
    for o in out:
        counts[o] = counts.get(o, 0) + 1
    return counts


def imports_s(tree: Path) -> float:
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "import agent.cli"], cwd=tree, env={"PYTHONPATH": str(tree)}, check=True)
    return time.monotonic() - t0


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--before", type=Path, help="another source tree to measure side by side")
    ap.add_argument("--idle", type=float, help="seconds of idle CPU measured (default 30, --quick 5)")
    ap.add_argument("--jobs", type=int, help="jobs before resident memory is read (default 200, --quick 50)")
    args = ap.parse_args()
    rounds = 1 if args.quick else 2
    idle_s = args.idle or (5.0 if args.quick else 30.0)
    n_jobs = args.jobs or (50 if args.quick else 200)
    trees = {"this code": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    res: dict[str, dict[str, list]] = {
        name: {"ready": [], "imports": [], "idle": [], "rss0": [], "rss": [], "threads": [], "burst": [], "burst1": []}
        for name in trees
    }
    sim = Simulator(SimConfig(port=0, api_keys=(KEY,), latency=0.05, workers=8, seed=1))
    sim.start()
    try:
        for _ in range(rounds):
            for name, tree in trees.items():
                r = res[name]
                r["imports"].append(imports_s(tree))
                with tempfile.TemporaryDirectory() as d:
                    cfg = booth_config(
                        Path(d),
                        sim.url,
                        endpoint="images.edits",
                        camera={"width": 1920, "height": 1080},
                        upload={"max_edge": 2048},
                        queue={"max_in_flight": 4, "remote_rate_per_min": 6000},
                    )
                    dm = Daemon(cfg, tree)
                    try:
                        r["ready"].append(dm.ready_s)
                        time.sleep(1.0)
                        r["rss0"].append(dm.status()[0])
                        c0, t0 = dm.cpu_s(), time.monotonic()
                        time.sleep(idle_s)
                        r["idle"].append(100 * (dm.cpu_s() - c0) / (time.monotonic() - t0))
                        run_jobs(dm.url, n_jobs)
                        time.sleep(1.0)
                        rss, threads = dm.status()
                        r["rss"].append(rss)
                        r["threads"].append(threads)
                        r["burst"].append(burst(dm.url, one_address=False))
                        time.sleep(2.0)
                        r["burst1"].append(burst(dm.url, one_address=True))
                    finally:
                        dm.stop()
    finally:
        sim.stop()
    table = Table(
        "bench_daemon",
        "The daemon: start, idle, memory, burst",
        ["measure", *trees, "baseline"],
        note=f"`edge-agent run` as a user starts it; {rounds} round(s), median (spread); idle over {idle_s:.0f} s; "
        f"resident memory after {n_jobs} jobs at 1920x1080; burst: {BURST} triggers at once from {BURST} addresses.",
    )

    def cell(name: str, key: str) -> str:
        xs = res[name][key]
        return f"{fmt(median(xs))} ({spread(xs)})" if len(xs) > 1 else fmt(median(xs))

    me = "this code"
    table.add("start to READY (s)", *(cell(n, "ready") for n in trees), f"{cell(me, 'imports')} (imports alone)")
    table.add("idle CPU (% of one core)", *(cell(n, "idle") for n in trees), "-")
    table.add("resident MB at READY", *(cell(n, "rss0") for n in trees), "-")
    table.add(f"resident MB after {n_jobs} jobs", *(cell(n, "rss") for n in trees), f"{cell(me, 'rss0')} (at READY)")
    table.add(f"threads after {n_jobs} jobs", *(cell(n, "threads") for n in trees), "-")

    def answers(name: str, key: str) -> str:
        last = res[name][key][-1]
        return ", ".join(f"{k}: {v}" for k, v in sorted(last.items()))

    for key, what in (("burst", f"{BURST} addresses"), ("burst1", "one address (the device)")):
        table.add(
            f"burst of {BURST} from {what}: answers (last round)",
            *(answers(n, key) for n in trees),
            "every one answered",
        )
    rss = median(res[me]["rss"])
    table.goal("resident memory < 80 MB after the jobs, however started", f"{rss:.1f} MB", rss < 80)
    unanswered = sum(v for b in res[me]["burst"] for k, v in b.items() if k != "202" and not k.endswith("Retry-After"))
    table.goal("every burst request answered (202, or refused with Retry-After)", f"{unanswered} not", unanswered == 0)
    table.emit(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
