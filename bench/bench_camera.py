"""Trigger-to-frame age of the OpenCV driver, with and without the newest-frame reader (hardware/camera/grabber.py).

The source is a real video file played at real time (30 fps) as an MJPEG stream on loopback - what OpenCV reads
from an IP camera, and like a V4L2 webcam it keeps producing frames whether anyone reads them or not. Every frame
carries its number, and the source notes when it made each one, so the age of a still is exact:
age = trigger time - time the frame was made (negative: made after the button was pressed).

Baseline: `newest_frame = false` (read on demand, flushing buffered frames by timing). Measured: the reader thread
(`newest_frame = true`, the default). Guests are spaced `--gap` seconds apart; the two variants are interleaved
over `--rounds` rounds.

    .venv/bin/python bench/bench_camera.py [--stills 6] [--gap 1.0] [--rounds 2]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def ages(url: str, src, newest: bool, stills: int, gap: float) -> list[float]:
    import numpy as np
    from PIL import Image

    from hardware.camera import CameraSpec, make_camera
    from tests.support.mjpeg_source import read_seq

    cam = make_camera(CameraSpec(driver="opencv", device=url, width=320, height=240, newest_frame=newest))
    cam.open()
    out = []
    try:
        for _ in range(stills):
            time.sleep(gap)
            trigger = time.monotonic()
            jpeg = cam.capture().jpeg
            seq = read_seq(np.asarray(Image.open(io.BytesIO(jpeg)).convert("L")))
            out.append((trigger - src.made_at[seq]) * 1000)
    finally:
        cam.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stills", type=int, default=6)
    ap.add_argument("--gap", type=float, default=1.0, help="seconds between guests")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    from tests.support.mjpeg_source import MjpegSource, write_video

    got: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as d:
        video = write_video(Path(d) / "live.avi", frames=60)
        with MjpegSource(video, fps=30) as src:
            for _ in range(args.rounds):
                for newest in (False, True):
                    got[newest] += ages(src.url, src, newest, args.stills, args.gap)
    print(
        f"\nOpenCV still age (trigger -> frame made), 320x240 MJPEG at 30 fps, guests {args.gap} s apart, "
        f"{len(got[True])} stills each\n"
    )
    print("| reader | median age (ms) | worst age (ms) | stale stills (made before the trigger) |")
    print("|---|---|---|---|")
    for newest, label in ((False, "read on demand (baseline)"), (True, "newest-frame reader")):
        a = got[newest]
        stale = sum(x > 0 for x in a)
        print(f"| {label} | {statistics.median(a):.0f} | {max(a):.0f} | {stale}/{len(a)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
