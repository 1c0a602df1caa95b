"""Float16 drift on the stress frames, per preset, for the models whose unscaled attention logits
overflow float16 (the ones tests/test_export_fp16_range.py uses): the `--half` graph with and
without its range contract, and PyTorch autocast (the torch backend's fp16), each against float32.

    python benchmarks/fp16_drift.py [--presets mvtec-224 mvtec-512]

Prints one row per preset and path: finite or not, map relative L2 over all stress frames, the
worst single frame and its drift, and the nodes kept float32. CPU only; ~5 minutes for both.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import onnx
import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fp16_models import overflow_checkpoint  # noqa: E402

from uniad_edge.export import export_onnx  # noqa: E402
from uniad_edge.export.half import to_mixed_precision  # noqa: E402
from uniad_edge.export.verify import ort_session, run_ort_chunked  # noqa: E402
from uniad_edge.model import FusedUniAD, load_checkpoint  # noqa: E402
from uniad_edge.model.autocast_check import evaluate  # noqa: E402
from uniad_edge.parity import HALF_LIMITS, compare, per_frame, worst  # noqa: E402
from uniad_edge.stress import stress_batch  # noqa: E402


def _row(path: str, reference: tuple, candidate: tuple, names: list[str], pinned: str) -> list[str]:
    frames = per_frame(reference, candidate)
    drift, bad = compare(reference, candidate), worst(frames)
    verdict = "beyond" if any(p.failures(HALF_LIMITS) for p in frames) else "within"
    return [
        path,
        "yes" if drift.finite else "NO",
        f"{drift.map_rel_l2:.2e}",
        f"{names[bad]} {frames[bad].map_rel_l2:.2e}",
        verdict,
        pinned,
    ]


def measure(preset: str, root: Path) -> list[list[str]]:
    ckpt = overflow_checkpoint(root / f"{preset}.pth", preset)
    fp32 = export_onnx(ckpt, root, f"{preset}-fp32", verify=False)
    half = export_onnx(ckpt, root, f"{preset}-fp16", half=True, verify_batches=(2,))
    names, frames = stress_batch(load_checkpoint(ckpt).preset.input_size)
    graph = fp32.onnx_path.read_bytes()
    reference = run_ort_chunked(ort_session(graph), frames, None)
    bare = to_mixed_precision(onnx.load_from_string(graph)).SerializeToString()
    rows = [
        _row(
            "--half, no range contract",
            reference,
            run_ort_chunked(ort_session(bare), frames, None),
            names,
            "head only",
        ),
        _row(
            "--half (export)",
            reference,
            run_ort_chunked(ort_session(half.onnx_path.read_bytes()), frames, None),
            names,
            f"{len(half.metadata.fp32_nodes)} nodes + head",
        ),
    ]
    fused = FusedUniAD(load_checkpoint(ckpt).model.eval()).eval()
    cpu = torch.device("cpu")
    ref_torch, autocast = evaluate(fused, frames, cpu, False), evaluate(fused, frames, cpu, True)
    # the torch backend's own criterion (`check_autocast_drift`), on the same measurement
    refused = compare(ref_torch, autocast).failures(HALF_LIMITS)
    backend = "refused at load" if refused else "loads"
    rows.append(_row(f"torch autocast ({backend})", ref_torch, autocast, names, "recon + head"))
    return [[preset, *row] for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--presets",
        nargs="+",
        default=["mvtec-224", "mvtec-512"],
        choices=["mvtec-224", "mvtec-512"],
    )
    args = parser.parse_args(argv)
    table = Table(
        title=f"float16 drift on the stress frames (limit: map rel L2 "
        f"{HALF_LIMITS.map_rel_l2:g} on every frame)"
    )
    for column in (
        "preset",
        "path",
        "finite",
        "map rel L2 (all)",
        "worst frame",
        "every frame",
        "float32",
    ):
        table.add_column(column)
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            for row in measure(preset, Path(tmp)):
                table.add_row(*row)
    Console(width=160).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
