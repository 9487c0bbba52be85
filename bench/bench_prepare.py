"""The upload-prepare step (agent/steps/prepare.py): a full-size camera JPEG shrunk for upload.

Baseline: the exact-size path (full decode, then resize). Measured: the JPEG draft path the agent uses (DCT-scaled
decode). Each variant runs in its own process so its peak memory (max RSS) is its own. Prints time and memory
ratios (below 1.00 = better than the baseline).

    .venv/bin/python bench/bench_prepare.py [--size 4056x3040] [--max-edge 2048] [--runs 10]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_photo(w: int, h: int) -> bytes:
    """A camera-like JPEG: gradients and noise (noise keeps the JPEG large, like a real sensor's)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 127 // (w + h))], axis=-1).astype(np.int16)
    img += rng.integers(-12, 12, size=img.shape, dtype=np.int16)
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def peak_rss_mb() -> float:
    """VmHWM of this process image (ru_maxrss would include the parent's peak: Linux keeps it across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(path: str, max_edge: int, draft: bool, runs: int) -> None:
    from agent.steps.prepare import prepare_upload

    data = Path(path).read_bytes()
    prepare_upload(data, max_edge, 90, draft=draft)  # warm-up (imports, codec tables)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = prepare_upload(data, max_edge, 90, draft=draft)
        times.append(time.perf_counter() - t0)
    rss_mb = peak_rss_mb()
    print(json.dumps({"median_ms": statistics.median(times) * 1000, "peak_rss_mb": rss_mb, "out_bytes": len(out)}))


def measure(path: Path, max_edge: int, draft: bool, runs: int) -> dict:
    r = subprocess.run(
        [sys.executable, __file__, "--child", str(path), str(max_edge), str(int(draft)), str(runs)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), bool(int(sys.argv[4])), int(sys.argv[5]))
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="4056x3040", help="camera still size (Pi HQ camera: 4056x3040)")
    ap.add_argument("--max-edge", type=int, default=2048)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        photo = Path(d) / "still.jpg"
        photo.write_bytes(make_photo(w, h))
        base = measure(photo, args.max_edge, False, args.runs)
        fast = measure(photo, args.max_edge, True, args.runs)
        size_mb = photo.stat().st_size / 1e6
    print(f"\nprepare_upload: a {w}x{h} JPEG ({size_mb:.1f} MB) to max_edge {args.max_edge}, median of {args.runs}\n")
    print("| path | time (ms) | peak RSS (MB) | time vs baseline | memory vs baseline |")
    print("|---|---|---|---|---|")
    print(f"| exact resize (baseline) | {base['median_ms']:.0f} | {base['peak_rss_mb']:.0f} | 1.00 | 1.00 |")
    print(
        f"| JPEG draft (the agent's path) | {fast['median_ms']:.0f} | {fast['peak_rss_mb']:.0f} "
        f"| {fast['median_ms'] / base['median_ms']:.2f} | {fast['peak_rss_mb'] / base['peak_rss_mb']:.2f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
