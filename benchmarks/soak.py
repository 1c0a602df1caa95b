"""Soak: 10,000 frames over several cameras through the station; resident memory start to end.

    python benchmarks/soak.py [--model export/model.onnx] [--frames 10000] [--cameras 2]

Exercises the whole station hot path: a reader thread per camera, batching across cameras,
resize into the reused buffer, inference, records, the JSONL sink and an overlay for every NG
frame (in a subscriber, as a display or web page would). Goal: RSS growth under 5% from the
warm-up to the end.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import cycle
from pathlib import Path

import numpy as np
from _fixture import model_or_fixture, synthetic_frames

from uniad_edge.runtime.capture import Reader
from uniad_edge.runtime.sinks import Verdict
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig

WARMUP = 200


def rss_mib() -> float:
    """Resident set size from /proc (Linux, Jetson): what the OOM killer looks at."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


class LoopReader(Reader):
    """A file-like source replaying a few frames `count` times (copied, as a decoder would)."""

    description = "synthetic loop"

    def __init__(self, frames: list[np.ndarray], count: int) -> None:
        self.frames, self.count = cycle(frames), count
        self.sent = 0

    def open(self) -> None:
        self.sent = 0

    def read(self) -> tuple[np.ndarray, str] | None:
        if self.sent >= self.count:
            return None
        self.sent += 1
        return next(self.frames).copy(), ""

    def close(self) -> None:
        """Nothing to release."""


class Watcher:
    """Subscriber: overlays NG frames and samples RSS after the warm-up and at the end."""

    def __init__(self) -> None:
        self.count = self.ng = 0
        self.start_rss = self.end_rss = 0.0

    def __call__(self, verdict: Verdict) -> None:
        self.count += 1
        if verdict.detection is not None and verdict.detection.is_anomalous:
            verdict.detection.overlay(verdict.image)
            self.ng += 1
        if self.count == WARMUP:
            self.start_rss = rss_mib()
        self.end_rss = rss_mib()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported .onnx or .engine (default: test fixture)")
    parser.add_argument("--frames", type=int, default=10_000, help="total over all cameras")
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = model_or_fixture(args.model, work, size=64, extra_work=0)
        frames = synthetic_frames(16)
        per_camera = args.frames // args.cameras
        config = StationConfig(
            cameras=[
                CameraConfig(f"cam{i}", LoopReader(frames, per_camera)) for i in range(args.cameras)
            ],
            model=model,
            threads=args.threads,
            log=work / "soak.jsonl",
        )
        watcher = Watcher()
        started = time.perf_counter()
        with Station(config) as station:
            station.subscribe(watcher)
            summary = station.run()
        elapsed = time.perf_counter() - started
        logged = len((work / "soak.jsonl").read_text().splitlines())
    growth = (watcher.end_rss - watcher.start_rss) / watcher.start_rss * 100
    print(
        f"frames: {summary.frames} over {args.cameras} cameras ({watcher.ng} NG, {logged} "
        f"logged) in {elapsed:.1f} s, {summary.frames / elapsed:.0f} images/s"
    )
    print(
        f"RSS after {WARMUP} frames: {watcher.start_rss:.1f} MiB, at end: {watcher.end_rss:.1f} MiB"
    )
    print(f"growth: {growth:+.2f}% (goal < 5%)")


if __name__ == "__main__":
    main()
