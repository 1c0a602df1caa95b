"""CPU milliseconds per image, one thread: a speed number that a busy machine does not inflate.

Wall-clock latency (`uniad-edge bench`) on a shared machine measures the other tenants as much as
the model; the CPU time one thread spends per image barely depends on them. Each preset's
random-weight model (speed only) is exported with the project's exporter and timed in ONNX
Runtime (1 intra-op thread) and PyTorch eager (1 thread), batch 1, both CPU and wall time.

    nice python benchmarks/cpu_ms_per_image.py --presets mvtec-224,lite0-224 --runs 20
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
import torch

from uniad_edge.export import export_onnx, sample_frames
from uniad_edge.model import FusedUniAD, build_model, save_checkpoint
from uniad_edge.model.summary import gflops
from uniad_edge.presets import get_preset


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="mvtec-224,lite0-224")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def timed(call, runs: int) -> dict[str, float]:
    """Mean CPU and wall milliseconds per call over `runs` calls, after 2 warm-up calls."""
    for _ in range(2):
        call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(runs):
        call()
    return {
        "cpu_ms": round((time.process_time() - cpu) * 1e3 / runs, 1),
        "wall_ms": round((time.perf_counter() - wall) * 1e3 / runs, 1),
    }


def measure(name: str, runs: int, folder: Path) -> dict:
    preset = get_preset(name)
    model = build_model(preset, pretrained=False).eval()
    ckpt = save_checkpoint(folder / f"{name}.pth", model)
    onnx_path = export_onnx(ckpt, folder / name, "model", verify_batches=(1,)).onnx_path
    frames = sample_frames(preset, 1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    fused = FusedUniAD(model).eval()
    images = torch.from_numpy(frames)
    torch.set_num_threads(1)
    with torch.no_grad():
        eager = timed(lambda: fused(images), runs)
    return {
        "preset": name,
        "gflops": round(gflops(preset), 2),
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "onnxruntime_1_thread": timed(lambda: session.run(None, {"image": frames}), runs),
        "torch_1_thread": eager,
    }


def main() -> None:
    args = parse()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, args.runs, Path(tmp)) for name in args.presets.split(",")]
    for row in rows:
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
