"""End-to-end FPS of `uniad-edge run` on a video file vs the backend's own batch-1 throughput.

    python benchmarks/runtime_throughput.py [--model export/model.onnx] [--frames 300]

Goal: the pipeline (capture, resize, inference, logging, overlapped) within 10% of the backend
alone. Without --model it uses the test fixture graph, widened with convolutions so inference,
not Python, dominates as it does for a real UniAD model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _fixture import (
    add_model_arguments,
    describe_model,
    model_or_fixture,
    synthetic_frames,
    write_video,
)

from uniad_edge.cli import main as cli_main
from uniad_edge.runtime.loader import load_backend


def backend_fps(model: Path, frames: int, threads: int | None) -> float:
    """Batch-1 inference on one preallocated input, after warm-up: the ceiling for `run`."""
    with load_backend(model, threads=threads) as backend:
        _, h, w, _ = backend.input_shape
        image = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
        for _ in range(10):
            backend.infer(image)
        start = time.perf_counter()
        for _ in range(frames):
            backend.infer(image)
        return frames / (time.perf_counter() - start)


def run_fps(model: Path, video: Path, log: Path, threads: int | None) -> tuple[float, int]:
    """Steady-state FPS of `uniad-edge run` from the log's capture timestamps.

    The first quarter is skipped: the reader thread fills its bounded queue at decode speed
    before inference paces it, which would overstate the rate.
    """
    argv = ["uniad-edge", "run", "--model", str(model), "--source", str(video), "--log", str(log)]
    if threads:
        argv += ["--threads", str(threads)]
    sys.argv = argv
    try:
        cli_main()
    except SystemExit as exc:
        if exc.code:
            raise
    stamps = [json.loads(line)["timestamp"] for line in log.read_text().splitlines()]
    steady = stamps[len(stamps) // 4 :]
    return (len(steady) - 1) / (steady[-1] - steady[0]), len(stamps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = model_or_fixture(args.model, work, args.size, args.extra_work)
        video = write_video(work / "bench.avi", synthetic_frames(args.frames))
        # Backend measured before and after the run: on a shared machine the load drifts.
        before = backend_fps(model, args.frames, args.threads)
        piped, scored = run_fps(model, video, work / "log.jsonl", args.threads)
        after = backend_fps(model, args.frames, args.threads)
    alone = (before + after) / 2
    print(f"model: {describe_model(args)}")
    print(f"backend batch-1: {alone:8.1f} fps (before {before:.1f}, after {after:.1f})")
    print(f"uniad-edge run:  {piped:8.1f} fps over {scored} frames of a 640x480 MJPG video")
    print(f"ratio run/backend: {piped / alone:.3f} (goal >= 0.90)")


if __name__ == "__main__":
    main()
