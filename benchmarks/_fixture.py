"""Shared by the runtime benchmarks: a model to run (given, or the test fixture), a video, and
ONNX Runtime's CPU time per image."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

TESTS = Path(__file__).resolve().parent.parent / "tests"


def add_model_arguments(
    parser: argparse.ArgumentParser,
    model_help: str = "exported .onnx or .engine (default: test fixture)",
) -> None:
    """--model and --threads, and --size/--extra-work of the fixture built without --model."""
    parser.add_argument("--model", help=model_help)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--size", type=int, default=224, help="fixture input size")
    parser.add_argument("--extra-work", type=int, default=24, help="fixture 3x3 conv layers")


def describe_model(args: argparse.Namespace) -> str:
    """The model `add_model_arguments`' options chose, for the report's first line."""
    return args.model or f"fixture {args.size}x{args.size} +{args.extra_work} convs"


def model_or_fixture(model: str | None, workdir: Path, size: int, extra_work: int) -> Path:
    """`model` if given, else the contract-obeying test fixture (needs the onnx package)."""
    if model:
        return Path(model)
    sys.path.insert(0, str(TESTS))
    from onnx_fixtures import build_model

    path = workdir / "fixture.onnx"
    build_model(path, input_size=(size, size), extra_work=extra_work)
    return path


def synthetic_frames(count: int, height: int = 480, width: int = 640) -> list[np.ndarray]:
    """Noisy grey frames, every fourth with a bright blob: cheap to make, costly to compress."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(count):
        frame = np.full((height, width, 3), (90, 120, 150), np.uint8)
        frame += rng.integers(0, 8, frame.shape, dtype=np.uint8)
        if i % 4 == 3:
            cv2.circle(frame, (width // 2, height // 2), height // 8, (250, 250, 250), -1)
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def ort_ms_per_image(path: Path, frames: np.ndarray, threads: int) -> float:
    """Median ms of one ONNX Runtime CPU run at batch 1 over `frames` (after one warm-up)."""
    import onnxruntime as ort

    from uniad_edge.metadata import INPUT_NAME

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    session.run(None, {INPUT_NAME: frames[:1]})
    times = []
    for frame in frames:
        started = time.perf_counter()
        session.run(None, {INPUT_NAME: frame[None]})
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
