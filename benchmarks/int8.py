"""INT8 (Q/DQ) against float32 per model: layer groups quantized, the gate's numbers, file size
and ONNX Runtime CPU speed, measured in one process in both orders.

    python benchmarks/int8.py --data SYNTH_DIR --ckpt lite0-224=runs/lite/last.pth \\
        --ckpt mvtec-224=random [--images 40] [--threads 2]

`--data` is the calibration/gate folder (`uniad-edge synth --size 224` output); a `random`
checkpoint is a random-init model of that preset (the hard case: activations nothing like a
trained network's). Each model is traced once: its float32 export (verified, with its range
contract) is quantized exactly as `export --precision int8 --int8-fallback --int8-rank` does
(every layer group's sensitivity measured alone, worst first in the last column). Speed is
the median ms per image at batch 1 over `--images` frames, float32 then int8 then int8 then
float32, so neither order's warm-up or the machine's load favours one side.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import onnx
from _fixture import ort_ms_per_image
from rich.console import Console
from rich.table import Table

from uniad_edge.errors import UniadError
from uniad_edge.export import export
from uniad_edge.export.graph import head_nodes
from uniad_edge.export.int8 import qdq_counts, quantize_within_gate
from uniad_edge.export.int8_data import int8_images
from uniad_edge.export.int8_gate import GateLimits
from uniad_edge.metadata import ModelMetadata
from uniad_edge.model import build_model, load_checkpoint, save_checkpoint
from uniad_edge.presets import get_preset


def _checkpoint(spec: str, root: Path) -> tuple[str, Path]:
    preset, _, path = spec.partition("=")
    if path == "random":
        model = build_model(get_preset(preset), pretrained=False).eval()
        return preset, save_checkpoint(root / f"{preset}.pth", model, {"class_names": ["a"]})
    return preset, Path(path)


def measure(spec: str, data: Path, root: Path, images: int, threads: int) -> list[str]:
    preset, ckpt = _checkpoint(spec, root)
    out = root / preset
    exported = export(ckpt, format="onnx", out=out, preset=preset, batch=1).onnx
    graph = onnx.load(str(exported.onnx_path))
    meta: ModelMetadata = exported.metadata
    sample = int8_images(data, meta.input_size, 32, 100)
    keep = [n.name for n in head_nodes(graph)] + list(meta.fp32_nodes or ())
    taps = load_checkpoint(ckpt, get_preset(preset)).preset.taps
    try:
        quantized = quantize_within_gate(
            graph, exported.onnx_path.read_bytes(), sample, meta.thresholds, taps=taps,
            keep_float=keep, limits=GateLimits(), fallback=True, rank=True, batch=1,
            report=print,
        )  # fmt: skip
    except UniadError as exc:  # the gate refused every quantized graph: that is the result
        return [preset, f"refused: {exc}", *["-"] * 8]
    int8_path = out / "int8.onnx"
    onnx.save(quantized.model, int8_path)
    frames = sample.gate[:images]
    fp32_a = ort_ms_per_image(exported.onnx_path, frames, threads)
    int8_a = ort_ms_per_image(int8_path, frames, threads)
    int8_b = ort_ms_per_image(int8_path, frames, threads)
    fp32_b = ort_ms_per_image(exported.onnx_path, frames, threads)
    record, gate = quantized.record, quantized.gate
    size = lambda p: f"{p.stat().st_size / 2**20:.1f}"  # noqa: E731
    auroc = "-" if gate.auroc_change is None else f"{gate.auroc_change:+.4f}"
    return [
        f"{preset} ({'random-init' if ckpt.name == f'{preset}.pth' else 'trained'})",
        f"{record['quantized_nodes']} nodes: {', '.join(record['quantized'])}",
        ", ".join(record["float"]) or "-",
        f"{gate.agreement:.1%} of {gate.images}",
        f"{gate.p99_score_change:.3f}",
        auroc,
        f"{size(exported.onnx_path)} / {size(int8_path)}",
        f"{(fp32_a + fp32_b) / 2:.1f} / {(int8_a + int8_b) / 2:.1f} "
        f"(fp32 {fp32_a:.1f}, {fp32_b:.1f}; int8 {int8_a:.1f}, {int8_b:.1f})",
        str(qdq_counts(quantized.model)["QuantizeLinear"]),
        "; ".join(
            f"{g} {v:.3f}" for g, v in sorted(record["ranking"].items(), key=lambda item: -item[1])
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ckpt", action="append", required=True, help="PRESET=PATH|random")
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    table = Table(title="INT8 (ONNX Runtime QDQ) vs float32, ONNX Runtime CPU, batch 1")
    for column in (
        "model", "quantized", "left float", "verdicts agree", "p99 |dscore|/thr", "AUROC change",
        "MiB fp32 / int8", "ms/image fp32 / int8", "Q nodes", "alone: p99 |dscore|/thr",
    ):  # fmt: skip
        table.add_column(column)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.ckpt:
            table.add_row(*measure(spec, args.data, Path(tmp), args.images, args.threads))
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
