"""Gathers what scripts/bench.sh's benchmarks left in bench/results/ into one report: printed as markdown (the
README's "Benchmarks" section is this), written as report.json. Benchmarks without --json contribute the markdown
table they printed."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Table


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1048576:.1f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
    report: dict = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "benches": []}
    parts = [f"Latest run: {report['date']}, {report['machine']}.", ""]
    goals = []
    for txt in sorted(out.glob("bench_*.txt")):
        name = txt.stem
        js = out / f"{name}.json"
        if js.exists():
            data = json.loads(js.read_text())
            t = Table(name, data["title"], data["columns"], data.get("note", ""))
            t.rows, t.goals = data["rows"], data["goals"]
            parts += [t.markdown(), ""]
            goals += [(name, g) for g in t.goals]
            report["benches"].append(data)
        else:
            lines = txt.read_text().splitlines()
            table = [ln for ln in lines if ln.startswith("|")]
            if not table:
                err = out / f"{name}.err"
                table = ["(no table: " + (err.read_text().strip().splitlines() or ["failed"])[-1] + ")"]
            parts += [f"`bench/{name}.py`", "", *table, ""]
            report["benches"].append({"bench": name, "text": "\n".join(table)})
    if goals:
        parts += ["**Goals**", "", "| benchmark | goal | measured | met |", "|---|---|---|---|"]
        parts += [f"| {n} | {g['goal']} | {g['measured']} | {'yes' if g['met'] else 'no'} |" for n, g in goals]
    text = "\n".join(parts)
    print(text)
    report["markdown"] = text
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
