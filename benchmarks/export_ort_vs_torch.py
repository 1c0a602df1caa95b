"""ONNX Runtime CPU vs PyTorch eager on the same UniAD model, in one run.

    python benchmarks/export_ort_vs_torch.py [--presets mvtec-224 mvtec-512] [--threads 2]

Random-init weights (speed does not depend on them; scores would be meaningless). Each preset is
exported with `export_onnx` (which also checks ORT-vs-PyTorch parity at batch 1 and 4: the
acceptance check for mvtec-512), then both run the fused model (uint8 frames in) at batch 1 and 8
with the same thread count. Goal: ONNX Runtime >= 3x PyTorch at batch 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from uniad_edge.export import export_onnx, sample_frames
from uniad_edge.model import FusedUniAD, build_model, save_checkpoint
from uniad_edge.presets import PRESETS


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def bench_preset(name: str, batches: list[int], threads: int, repeats: int, workdir: Path):
    torch.manual_seed(0)
    model = build_model(PRESETS[name], pretrained=False).eval()
    ckpt = save_checkpoint(workdir / f"{name}.pth", model)
    started = time.perf_counter()
    result = export_onnx(ckpt, workdir, verify_batches=(1, 4))
    export_s = time.perf_counter() - started
    fused = FusedUniAD(model).eval()
    frames = sample_frames(model.preset, max(batches))
    # PyTorch first, before any ORT session exists, so idle ORT threads cannot steal its cores.
    torch_ms = {}
    for batch in batches:
        xt = torch.from_numpy(np.ascontiguousarray(frames[:batch]))

        def eager(xt: torch.Tensor = xt) -> object:
            with torch.inference_mode():
                return fused(xt)

        torch_ms[batch] = median_ms(eager, max(2, repeats // batch))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(result.onnx_path), options, ["CPUExecutionProvider"])
    rows = []
    for batch in batches:
        x = np.ascontiguousarray(frames[:batch])
        ort_ms = median_ms(lambda x=x: session.run(None, {"image": x}), max(2, repeats // batch))
        rows.append({"preset": name, "batch": batch, "torch_ms": torch_ms[batch],
                     "ort_ms": ort_ms, "speedup": torch_ms[batch] / ort_ms})  # fmt: skip
    parity = [p.describe() for p in result.parity]
    return rows, {"preset": name, "export_s": export_s, "nodes": result.nodes, "parity": parity}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["mvtec-224", "mvtec-512"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads, both engines")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs at batch 1")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows, exports = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets:
            preset_rows, info = bench_preset(
                name, args.batches, args.threads, args.repeats, Path(tmp)
            )
            rows += preset_rows
            exports.append(info)
            print(f"{name}: exported in {info['export_s']:.0f} s, {info['nodes']} nodes; "
                  f"ORT vs PyTorch {'; '.join(info['parity'])}")  # fmt: skip
    print(f"\nrandom-init weights, {args.threads} threads, torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}")  # fmt: skip
    print(f"{'preset':<10} {'batch':>5} {'torch ms/batch':>15} {'ORT ms/batch':>13} {'speedup':>8}")
    for r in rows:
        print(f"{r['preset']:<10} {r['batch']:>5} {r['torch_ms']:>15.1f} {r['ort_ms']:>13.1f} "
              f"{r['speedup']:>7.2f}x")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "exports": exports}, indent=2) + "\n")


if __name__ == "__main__":
    main()
