"""The upload-prepare step (agent/steps/prepare.py): a full-size camera JPEG shrunk for upload.

Baseline: plain Pillow doing the same job the obvious way (open, exif_transpose, convert, crop/mirror, resize with
LANCZOS, save). Measured: the agent's prepare_upload with the DCT-scaled decode off ("exact") and on (the agent's
path), each with and without an `[upload]` orientation (crop_aspect 3:4 + mirror). Each variant runs in its own
process so its peak memory (max RSS) is its own; the variants are interleaved over --rounds rounds and the median
is reported. Prints time and memory ratios (below 1.00 = better than the baseline).

    .venv/bin/python bench/bench_prepare.py [--size 4056x3040] [--max-edge 2048] [--runs 5] [--rounds 3]
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


def plain_pillow(data: bytes, max_edge: int, crop: bool) -> bytes:
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as src:
        im = ImageOps.exif_transpose(src).convert("RGB")
    if crop:
        w, h = im.size
        cw = round(h * 3 / 4)
        im = ImageOps.mirror(im.crop(((w - cw) // 2, 0, (w - cw) // 2 + cw, h)))
    im.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def child(path: str, max_edge: int, variant: str, runs: int) -> None:
    from agent.steps.prepare import Orientation, prepare_upload

    data = Path(path).read_bytes()
    crop = variant.endswith("+crop")
    turn = Orientation.of(0, True, "3:4") if crop else None

    def once() -> bytes:
        if variant.startswith("pillow"):
            return plain_pillow(data, max_edge, crop)
        return prepare_upload(data, max_edge, 90, draft=variant.startswith("draft"), orientation=turn)

    once()  # warm-up (imports, codec tables)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = once()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"median_ms": statistics.median(times) * 1000, "peak_rss_mb": peak_rss_mb(), "out": len(out)}))


def measure(path: Path, max_edge: int, variant: str, runs: int) -> dict:
    r = subprocess.run(
        [sys.executable, __file__, "--child", str(path), str(max_edge), variant, str(runs)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout)


VARIANTS = [
    ("pillow", "plain Pillow (baseline)"),
    ("exact", "prepare_upload, no DCT draft"),
    ("draft", "prepare_upload (the agent's path)"),
    ("pillow+crop", "plain Pillow, crop 3:4 + mirror (baseline)"),
    ("draft+crop", "prepare_upload, crop 3:4 + mirror"),
]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="4056x3040", help="camera still size (Pi HQ camera: 4056x3040, 12.3 MP)")
    ap.add_argument("--max-edge", type=int, default=2048)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    import tempfile

    results: dict[str, list[dict]] = {v: [] for v, _ in VARIANTS}
    with tempfile.TemporaryDirectory() as d:
        photo = Path(d) / "still.jpg"
        photo.write_bytes(make_photo(w, h))
        for _ in range(args.rounds):  # interleaved: a busy moment on the machine hits every variant alike
            for v, _ in VARIANTS:
                results[v].append(measure(photo, args.max_edge, v, args.runs))
        size_mb = photo.stat().st_size / 1e6
    med = {
        v: {k: statistics.median(r[k] for r in rs) for k in ("median_ms", "peak_rss_mb")} for v, rs in results.items()
    }
    print(
        f"\nprepare_upload: a {w}x{h} JPEG ({size_mb:.1f} MB) to max_edge {args.max_edge}, "
        f"median of {args.runs} runs x {args.rounds} interleaved rounds\n"
    )
    print("| path | time (ms) | peak RSS (MB) | time vs plain Pillow | memory vs plain Pillow |")
    print("|---|---|---|---|---|")
    for v, label in VARIANTS:
        base = med["pillow+crop" if v.endswith("+crop") else "pillow"]
        m = med[v]
        print(
            f"| {label} | {m['median_ms']:.0f} | {m['peak_rss_mb']:.0f} | {m['median_ms'] / base['median_ms']:.2f} "
            f"| {m['peak_rss_mb'] / base['peak_rss_mb']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
