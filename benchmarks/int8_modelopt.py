"""Which quantizer writes the INT8 graph: ONNX Runtime's QDQ quantizer (the export's) against
NVIDIA ModelOpt's ONNX post-training quantization, on one float32 export and one calibration.

    python benchmarks/int8_modelopt.py --data SYNTH_DIR --ckpt lite0-224=runs/lite/last.pth \\
        --modelopt-python /tmp/mo/bin/python [--methods max entropy] [--images 30]

`nvidia-modelopt[onnx]` replaces the CPU onnxruntime with onnxruntime-gpu and pulls cupy, so it
lives in a throwaway venv (`python -m venv /tmp/mo && /tmp/mo/bin/pip install
"nvidia-modelopt[onnx]"`): this script runs there only to quantize (`--child`, which imports
nothing but modelopt), and everything else here, in the project's environment, so both graphs
are gated and timed by the same ONNX Runtime. Both leave the distance head and the range-pinned
nodes float; ModelOpt otherwise places its Q/DQ pairs by its own TensorRT rules (calibrated on
the CPU: `calibration_eps=["cpu"]`, float32 kept: `high_precision_dtype="fp32"`). Speed is the
median ms per image at batch 1, every graph timed, then timed again in reverse order.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

CHILD = "--child"


def _child(job: Path) -> None:
    """In ModelOpt's venv: quantize one graph as `job` (JSON) says."""
    from modelopt.onnx.quantization import quantize

    spec = json.loads(job.read_text())
    quantize(
        spec["onnx"],
        quantize_mode="int8",
        calibration_data=np.load(spec["calibration"]),
        calibration_method=spec["method"],
        calibration_eps=["cpu"],
        nodes_to_exclude=[re.escape(name) for name in spec["exclude"]],
        high_precision_dtype="fp32",
        output_path=spec["out"],
        log_level="WARNING",
    )


def _placement(path: Path, head: set[str]) -> tuple[str, int]:
    """Op types that read a dequantized tensor (how many of each), and how many of the
    distance head's inputs are dequantized (0: the head reads float)."""
    import onnx

    graph = onnx.load(str(path)).graph
    dq = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    readers = Counter(
        n.op_type for n in graph.node if n.op_type != "QuantizeLinear" and set(n.input) & dq
    )
    head_dq = sum(i in dq for n in graph.node if n.name in head for i in n.input)
    return ", ".join(f"{op} {count}" for op, count in readers.most_common()), head_dq


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == CHILD:
        _child(Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ckpt", required=True, help="PRESET=PATH")
    parser.add_argument("--modelopt-python", type=Path, required=True)
    parser.add_argument("--methods", nargs="+", default=["max", "entropy"])
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        compare(args, Path(tmp))


def compare(args: argparse.Namespace, root: Path) -> None:
    import onnx
    from _fixture import ort_ms_per_image
    from rich.console import Console
    from rich.table import Table

    from uniad_edge.export import export
    from uniad_edge.export.graph import head_nodes
    from uniad_edge.export.int8 import Quantizer, scores
    from uniad_edge.export.int8_data import int8_images
    from uniad_edge.export.int8_gate import GateLimits, measure, thresholds_for
    from uniad_edge.export.int8_groups import layer_groups
    from uniad_edge.model import load_checkpoint
    from uniad_edge.presets import get_preset

    preset, _, ckpt = args.ckpt.partition("=")
    exported = export(Path(ckpt), format="onnx", out=root / "fp32", preset=preset, batch=1).onnx
    fp32 = exported.onnx_path
    graph = onnx.load(str(fp32))
    meta = exported.metadata
    images = int8_images(args.data, meta.input_size, 32, 100)
    head = {n.name for n in head_nodes(graph)}
    keep = sorted(head | set(meta.fp32_nodes or ()))
    taps = load_checkpoint(Path(ckpt), get_preset(preset)).preset.taps
    reference = scores(fp32.read_bytes(), images.gate, 1)
    per_image, source = thresholds_for(
        meta.thresholds, images.gate_classes, reference, images.gate_labels
    )

    graphs: dict[str, tuple[Path, float]] = {}
    started = time.perf_counter()
    quantizer = Quantizer(graph, images.calibration, 1, keep)
    try:
        nodes = [n for names in layer_groups(graph, taps, keep).values() for n in names]
        ort_path = root / "ort.onnx"
        onnx.save(quantizer.quantize(nodes), ort_path)
    finally:
        quantizer.close()
    graphs["onnxruntime QDQ (MinMax), the export's"] = (ort_path, time.perf_counter() - started)
    np.save(root / "calibration.npy", images.calibration)
    for method in args.methods:
        out = root / f"modelopt-{method}.onnx"
        job = root / f"{method}.json"
        spec = {"onnx": str(fp32), "calibration": str(root / "calibration.npy"),
                "method": method, "exclude": keep, "out": str(out)}  # fmt: skip
        job.write_text(json.dumps(spec))
        started = time.perf_counter()
        subprocess.run([str(args.modelopt_python), __file__, CHILD, str(job)], check=True)
        graphs[f"modelopt ({method})"] = (out, time.perf_counter() - started)

    frames = images.gate[: args.images]
    order = [fp32, *(path for path, _ in graphs.values())]
    first = {p: ort_ms_per_image(p, frames, args.threads) for p in order}
    second = {p: ort_ms_per_image(p, frames, args.threads) for p in reversed(order)}
    table = Table(title=f"{preset}: INT8 quantizers, gated and timed by ONNX Runtime CPU")
    for column in (
        "quantizer", "s to quantize", "reads dequantized (op: count)", "head inputs int8",
        "verdicts agree", "p99 |dscore|/thr", "AUROC change", "MiB", "ms/image (both orders)",
    ):  # fmt: skip
        table.add_column(column)
    size = lambda p: f"{p.stat().st_size / 2**20:.1f}"  # noqa: E731
    ms = lambda p: f"{(first[p] + second[p]) / 2:.0f} ({first[p]:.0f}, {second[p]:.0f})"  # noqa: E731
    table.add_row("float32 export", "-", "-", "-", "-", "-", "-", size(fp32), ms(fp32))
    for name, (path, seconds) in graphs.items():
        got = scores(path.read_bytes(), images.gate, 1)
        gate = measure(reference, got, images.gate_labels, per_image, source, images.gate_paths)
        readers, head_dq = _placement(path, head)
        missed = gate.misses(GateLimits())
        agree = f"{gate.agreement:.1%} of {gate.images}" + (" (misses)" if missed else "")
        auroc = "-" if gate.auroc_change is None else f"{gate.auroc_change:+.4f}"
        table.add_row(name, f"{seconds:.0f}", readers, str(head_dq), agree,
                      f"{gate.p99_score_change:.3f}", auroc, size(path), ms(path))  # fmt: skip
    Console(width=220).print(table)


if __name__ == "__main__":
    main()
