"""Several cameras on one backend: total images/s and per-camera latency, 4 sources vs 1.

    python benchmarks/multicam.py [--model export/model.onnx] [--frames 200] [--cameras 4]
                                  [--fps 30] [--seconds 10] [--json multicam.json]
    python benchmarks/multicam.py --backend torch [--model best.pth | --preset mvtec-224]
                                  [--precision fp16] --cameras 1,4,8

Two scenarios, each measured with 1 camera and with N in the same run (ratios against the
1-camera baseline; `--cameras 4,8` measures each count):


- files: every camera is a video file (MJPG, 640x480) scored to the end, nothing dropped; total
  images/s shows what batching frames of several cameras on one backend buys.
- live: every camera replays the video as a live source at --fps (latest frame kept, older ones
  dropped, as a real camera); per-camera scored fps, drops and capture-to-verdict latency
  p50/p99 (from the end of the frame's capture to its verdict reaching a subscriber).

Without --model the test fixture graph is used, widened with convolutions so that inference,
not Python, dominates as it does for a real UniAD model. `--backend torch` runs PyTorch eager
(on CUDA when PyTorch sees a GPU, else the CPU) on a checkpoint (--model) or on random weights
of --preset, so the same scenario runs wherever a GPU is at hand without exporting anything.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from _fixture import model_or_fixture, synthetic_frames, write_video

from uniad_edge.backends import register_model_backends
from uniad_edge.presets import get_preset
from uniad_edge.runtime.backends.base import Backend
from uniad_edge.runtime.backends.registry import construct, load_backend
from uniad_edge.runtime.capture import Reader
from uniad_edge.runtime.detector import Detector
from uniad_edge.runtime.sinks import Verdict
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig


class LiveReplay(Reader):
    """A video replayed in a loop at `fps` as a live camera (the stream keeps the newest frame)."""

    live = True

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.period = path, 1.0 / fps
        self.description = f"{path.name} as a {fps:g} fps camera"
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        self._cap = cv2.VideoCapture(str(self.path))
        self._next = time.perf_counter()

    def read(self) -> tuple[np.ndarray, str] | None:
        assert self._cap is not None
        self._next += self.period
        time.sleep(max(0.0, self._next - time.perf_counter()))
        ok, image = self._cap.read()
        if not ok:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._cap.read()
        return (image, "") if ok else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


def measure(detector: Detector, cameras: list[CameraConfig], seconds: float | None = None) -> dict:
    """Run a station to the end (or for `seconds`); totals, per-camera latency and fps."""
    latency: dict[str, list[float]] = {c.name: [] for c in cameras}

    def on_verdict(verdict: Verdict) -> None:
        latency[verdict.camera].append((time.time() - verdict.frame.timestamp) * 1e3)

    config = StationConfig(cameras=cameras, max_batch=max(8, len(cameras)))
    with Station(config, detector) as station:
        station.subscribe(on_verdict)
        if seconds is None:
            summary = station.run()
        else:
            station.start()
            time.sleep(seconds)
            station.stop()
            summary = station.wait()
            assert summary is not None
    per_camera = {
        name: {
            "frames": summary.cameras[name].frames,
            "fps": summary.cameras[name].frames / summary.elapsed_s,
            "dropped": summary.states[name].dropped,
            "latency_p50_ms": float(np.percentile(values, 50)),
            "latency_p99_ms": float(np.percentile(values, 99)),
        }
        for name, values in latency.items()
    }
    return {
        "cameras": len(cameras),
        "frames": summary.frames,
        "elapsed_s": summary.elapsed_s,
        "images_per_s": summary.frames / summary.elapsed_s,
        "latency_p50_ms": float(np.median([c["latency_p50_ms"] for c in per_camera.values()])),
        "latency_p99_ms": float(max(c["latency_p99_ms"] for c in per_camera.values())),
        "per_camera": per_camera,
    }


def print_table(title: str, rows: list[dict], base: dict) -> None:
    print(f"\n{title}")
    print(
        "| cameras | frames | images/s total | vs 1 camera | per-camera fps | dropped | "
        "latency p50 ms | latency p99 ms | p50 vs 1 camera |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        fps = np.mean([c["fps"] for c in row["per_camera"].values()])
        dropped = sum(c["dropped"] for c in row["per_camera"].values())
        print(
            f"| {row['cameras']} | {row['frames']} | {row['images_per_s']:.1f} | "
            f"{row['images_per_s'] / base['images_per_s']:.2f}x | {fps:.1f} | {dropped} | "
            f"{row['latency_p50_ms']:.1f} | {row['latency_p99_ms']:.1f} | "
            f"{row['latency_p50_ms'] / base['latency_p50_ms']:.2f}x |"
        )


def open_model(args: argparse.Namespace, work: Path) -> Backend:
    """The backend the scenario runs: PyTorch on a checkpoint or a preset's random weights, or
    the model (default: the fixture graph) with the backend its file type names."""
    register_model_backends()  # PyTorch eager's row comes from above the runtime
    if args.backend == "torch":
        source = args.model or get_preset(args.preset)
        return construct("torch", source, threads=args.threads, precision=args.precision)
    model = model_or_fixture(args.model, work, size=224, extra_work=8)
    return load_backend(model, threads=args.threads)


def describe_default(args: argparse.Namespace) -> str:
    if args.backend == "torch":
        return f"{args.preset} random weights ({args.precision}, speed only)"
    return "fixture 224x224 + 8 convs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported .onnx or .engine (default: test fixture)")
    parser.add_argument("--frames", type=int, default=200, help="frames per video (files)")
    parser.add_argument("--cameras", default="4", help="camera count(s), e.g. 4 or 1,4,8")
    parser.add_argument("--backend", default="auto", help="auto (from --model) or torch")
    parser.add_argument("--preset", default="mvtec-224", help="torch without --model: weights")
    parser.add_argument("--precision", default="fp32", help="torch: fp32 or fp16 (autocast)")
    parser.add_argument("--fps", type=float, default=30.0, help="live replay rate per camera")
    parser.add_argument("--seconds", type=float, default=10.0, help="live scenario duration")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        counts = sorted({1, *(int(c) for c in args.cameras.split(","))})
        video = write_video(work / "line.avi", synthetic_frames(args.frames))
        detector = Detector(open_model(args, work), max_batch=max(8, *counts))
        detector.predict(synthetic_frames(2))  # warm-up
        device = detector.backend.device_type
        results: dict[str, list[dict]] = {"files": [], "live": []}
        for count in counts:
            cams = [CameraConfig(f"cam{i}", str(video)) for i in range(count)]
            results["files"].append(measure(detector, cams))
        for count in counts:
            cams = [CameraConfig(f"cam{i}", LiveReplay(video, args.fps)) for i in range(count)]
            results["live"].append(measure(detector, cams, args.seconds))
        detector.close()
    info = {
        "model": args.model or describe_default(args),
        "backend": args.backend,
        "device": device,
        "cpus": os.cpu_count(),
    }
    print(
        f"model: {info['model']}; backend {args.backend} on {device}; {info['cpus']} CPUs; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print_table("files: every frame of each video", results["files"], results["files"][0])
    print_table(
        f"live: each camera at {args.fps:g} fps for {args.seconds:g} s (newest frame kept)",
        results["live"],
        results["live"][0],
    )
    if args.json:
        args.json.write_text(json.dumps({**info, **results}, indent=2))


if __name__ == "__main__":
    main()
