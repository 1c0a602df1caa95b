"""Soak: 10,000 frames through the runtime pipeline; resident memory at start and end.

    python benchmarks/soak.py [--model export/model.onnx] [--frames 10000]

Exercises the full hot path (reader thread, resize into the reused buffer, inference, JSONL
logging, an overlay for every NG frame). Goal: RSS growth under 5% from the warm-up to the end.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import cycle
from pathlib import Path

import numpy as np
from _fixture import model_or_fixture, synthetic_frames

from uniad_edge.runtime.capture import FrameStream, Reader
from uniad_edge.runtime.detector import Detector
from uniad_edge.runtime.pipeline import Pipeline
from uniad_edge.runtime.recorder import JsonlLog, frame_record

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported .onnx or .engine (default: test fixture)")
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = model_or_fixture(args.model, work, size=64, extra_work=0)
        detector = Detector(model, threads=args.threads)
        stream = FrameStream(LoopReader(synthetic_frames(16), args.frames)).start()
        log = JsonlLog(work / "soak.jsonl")
        start_rss = end_rss = 0.0
        ng = 0
        started = time.perf_counter()
        for count, (frame, detection) in enumerate(Pipeline(detector, stream), 1):
            if detection.is_anomalous:
                detection.overlay(frame.image)
                ng += 1
            log.write(frame_record(frame, detection, stream.description, 0.0))
            if count == WARMUP:
                start_rss = rss_mib()
            end_rss = rss_mib()
        elapsed = time.perf_counter() - started
        log.close()
        detector.close()
    growth = (end_rss - start_rss) / start_rss * 100
    print(f"frames: {count} ({ng} NG) in {elapsed:.1f} s, {count / elapsed:.0f} fps")
    print(f"RSS after {WARMUP} frames: {start_rss:.1f} MiB, at end: {end_rss:.1f} MiB")
    print(f"growth: {growth:+.2f}% (goal < 5%)")


if __name__ == "__main__":
    main()
