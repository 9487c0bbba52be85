"""What every benchmark shares: the --quick/--json options, median and spread, a markdown table that is also
written as JSON (scripts/bench.sh gathers the JSON files into one report), and a booth config on the simulator."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KEY = "sk-bench-0123456789"
KEY_ENV = "EDGE_AGENT_BENCH_KEY"


def parser(doc: str | None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (for development; figures are rougher)")
    ap.add_argument("--json", type=Path, help="also write the table here as JSON")
    return ap


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def spread(xs: Sequence[float]) -> str:
    """The middle half of the samples (p25-p75), or min-max for fewer than 4 samples."""
    if not xs:
        return "-"
    if len(xs) < 4:
        lo, hi = min(xs), max(xs)
    else:
        q = statistics.quantiles(xs, n=4)
        lo, hi = q[0], q[2]
    return f"{fmt(lo)}–{fmt(hi)}"


def fmt(x: Any) -> str:
    if isinstance(x, float):
        if x != x:
            return "-"
        return f"{x:.3f}" if abs(x) < 1 else (f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}")
    return str(x)


class Table:
    """One benchmark's result: a title, columns, rows; printed as markdown, written as JSON."""

    def __init__(self, bench: str, title: str, columns: list[str], note: str = "") -> None:
        self.bench, self.title, self.columns, self.note = bench, title, columns, note
        self.rows: list[list[Any]] = []
        self.goals: list[dict[str, Any]] = []  # {"goal", "measured", "met"}

    def add(self, *cells: Any) -> None:
        self.rows.append(list(cells))

    def goal(self, goal: str, measured: str, met: bool) -> None:
        self.goals.append({"goal": goal, "measured": measured, "met": bool(met)})

    def markdown(self) -> str:
        out = [f"**{self.title}** (`bench/{self.bench}.py`)", ""]
        if self.note:
            out += [self.note, ""]
        out.append("| " + " | ".join(self.columns) + " |")
        out.append("|" + "---|" * len(self.columns))
        out += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in self.rows]
        return "\n".join(out)

    def emit(self, path: Path | None) -> None:
        print("\n" + self.markdown() + "\n", flush=True)
        for g in self.goals:
            print(f"  goal {'met' if g['met'] else 'MISSED'}: {g['goal']} (measured {g['measured']})", flush=True)
        if path is not None:
            data = {
                "bench": self.bench,
                "title": self.title,
                "note": self.note,
                "columns": self.columns,
                "rows": self.rows,
                "goals": self.goals,
                "at": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            path.write_text(json.dumps(data, indent=1, default=str))


def booth_config(tmp: Path, sim_url: str, *, endpoint: str = "ai.generations", **over: Any) -> Path:
    """A booth on the simulator: synthetic camera, one EasyAI platform, one profile "p"; `over` merges per
    section (e.g. queue={"max_in_flight": 4}, platform={"poll_interval_s": 5})."""
    import tomli_w

    os.environ[KEY_ENV] = KEY
    platform = {"kind": "easyai", "base_url": sim_url, "api_key_env": KEY_ENV, **over.pop("platform", {})}
    cfg: dict[str, Any] = {
        "device": {"id": "bench", "state_dir": str(tmp / "state"), "output_dir": str(tmp / "results")},
        "camera": {"driver": "synthetic", "width": 320, "height": 240},
        "upload": {"max_edge": 320},
        "platforms": {"easy": platform},
        "profiles": [{"name": "p", "platform": "easy", "endpoint": endpoint, "model": "cartoon", "prompt": "x"}],
        "http": {"listen": "127.0.0.1:0"},
        "queue": {"min_free_disk_mb": 1},
    }
    for section, values in over.items():
        cfg.setdefault(section, {}).update(values)
    p = tmp / "config.toml"
    p.write_bytes(tomli_w.dumps(cfg).encode())
    return p


class Daemon:
    """`edge-agent run` in a child process from a source tree (this one, or --before's), told NOTIFY_SOCKET like
    systemd so that its READY=1 is timed."""

    def __init__(self, cfg: Path, tree: Path = ROOT, env: dict[str, str] | None = None) -> None:
        import socket
        import subprocess
        import tempfile

        self.sockdir = tempfile.mkdtemp()
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(f"{self.sockdir}/notify")
        env = {
            **os.environ,
            KEY_ENV: KEY,
            "PYTHONPATH": str(tree),
            "NOTIFY_SOCKET": f"{self.sockdir}/notify",
            **(env or {}),
        }
        env = {k: v for k, v in env.items() if not k.startswith("MALLOC_")}  # as a user starts it
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "-c", str(cfg)],
            env=env,
            cwd=str(tree),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.notify.settimeout(60)
        while b"READY=1" not in self.notify.recv(4096):
            pass
        self.ready_s = time.monotonic() - self.t0
        from agent.config import load_config

        info = load_config(cfg).config.device.state_dir / "daemon.json"
        self.url = json.loads(info.read_text())["url"]

    def status(self) -> tuple[float, int]:
        """(VmRSS MB, threads)."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines())
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        import shutil

        self.proc.terminate()
        try:
            self.proc.wait(20)
        except Exception:
            self.proc.kill()
            self.proc.wait(5)
        self.notify.close()
        shutil.rmtree(self.sockdir, ignore_errors=True)


class SimProcess:
    """The simulator in its own process (`edge-agent simulate`), as a platform is: what it spends serving does not
    compete with the agent for the interpreter lock (on 2 cores it still shares the CPU, as any load does)."""

    def __init__(self, latency: float = 0.0, workers: int = 8, seed: int = 1) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "simulate", "--port", "0", "--latency", str(latency)]
            + ["--workers", str(workers), "--seed", str(seed), "--key", KEY],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=str(ROOT),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "simulator listening on http://127.0.0.1:PORT"
        if "listening on " not in line:
            self.proc.kill()
            raise RuntimeError(f"the simulator did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1].strip()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
