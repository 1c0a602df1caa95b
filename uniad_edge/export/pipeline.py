"""`export_onnx`: checkpoint -> verified `export/<name>.onnx` + `<name>.json`, atomically.

Every stage runs in memory; both files are written to temporary names and renamed only after
the graph has passed every check, so a failure or Ctrl-C leaves no partial artifact behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from ..artifacts import stem
from ..errors import UniadError
from ..fileio import atomic_path
from ..metadata import METADATA_KEY, ModelMetadata
from ..model import Checkpoint, FusedUniAD, load_checkpoint
from ..model.deployment import build_metadata, checkpoint_thresholds
from ..parity import Parity
from ..presets import Preset, get_preset
from ..stress import stress_frames
from .checks import check_graph, graph_problems
from .fold import fold_constants
from .fp16_range import RangeContract, half_within_contract, range_contract
from .frame_size import (
    CameraFrames,
    FrameGeometry,
    camera_frames,
    check_host_parity,
    geometry,
)
from .graph import fp32_pins, head_nodes, trace_to_onnx
from .half import head_float_types
from .int8 import Quantized, quantize_within_gate
from .int8_data import Int8Images, default_calib_data, int8_images
from .options import ExportOptions
from .verify import FrameBatch, check_parity, sample_frames

ProgressFn = Callable[[str], None]
DYNAMIC_VERIFY_BATCHES = (1, 3)


@dataclass
class ExportResult:
    """What was written and how well it agrees with PyTorch (for summaries and benchmarks)."""

    onnx_path: Path
    sidecar_path: Path
    metadata: ModelMetadata
    nodes: int
    parity: list[Parity] = field(default_factory=list)
    half_drift: Parity | None = None
    host_parity: Parity | None = None  # --frame-size: baked preparation vs the host's
    seconds: float = 0.0
    traced_nodes: int = 0  # before constant folding
    float32_nodes: int = 0  # of the folded float32 graph (a --half graph adds its Casts)
    int8: Quantized | None = None  # --precision int8: the gated Q/DQ graph and its record


def default_name(checkpoint: Path) -> str:
    """`runs/a/best.pth` -> `best`, `ckpt.pth.tar` -> `ckpt`; `model` when nothing is left."""
    return stem(checkpoint) or "model"


def _check_writable(folder: Path) -> None:
    """Fail in a second, not after a minute of tracing, when the output folder is unusable."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UniadError(
            f"cannot write to {folder}: {exc.strerror or exc}; choose a writable --out folder"
        ) from None


def _resolve_checkpoint(ckpt: str | os.PathLike[str] | Checkpoint, preset: str | Preset | None):
    if isinstance(ckpt, Checkpoint):
        return ckpt
    if isinstance(preset, str):
        try:
            preset = get_preset(preset)
        except ValueError as exc:
            raise UniadError(str(exc)) from None
    return load_checkpoint(ckpt, preset)


def _serialize(model: onnx.ModelProto, metadata: ModelMetadata) -> bytes:
    del model.metadata_props[:]
    model.metadata_props.add(key=METADATA_KEY, value=metadata.to_json())
    model.producer_name = "uniad-edge"
    return model.SerializeToString()


def export_onnx(
    ckpt: str | os.PathLike[str] | Checkpoint,
    out_dir: str | os.PathLike[str] = ExportOptions.out,
    name: str | None = None,
    *,
    batch: int | None = None,
    half: bool = False,
    precision: str = ExportOptions.precision,
    opset: int = ExportOptions.opset,
    verify: bool = ExportOptions.verify,
    data: str | os.PathLike[str] | None = None,
    preset: str | Preset | None = None,
    verify_batches: tuple[int, ...] | None = None,
    progress: ProgressFn | None = None,
    frame_size: tuple[int, int] | None = None,
    roi: tuple[int, int, int, int] | None = None,
) -> ExportResult:
    """Export a checkpoint (ours or official) to `out_dir/<name>.onnx` and its JSON sidecar.

    `batch=None` gives a dynamic batch; `precision="fp16"` (or `half`) a mixed-precision graph;
    `opset` defaults to 17 (what TensorRT 8.6 parses); `verify` runs the ONNX checker and the
    ORT-vs-PyTorch parity check on the folded graph (and the float16 drift check for fp16).
    `frame_size` (width, height) and `roi` (x, y, width, height) bake the crop and resize of
    camera frames into the graph (see `frame_size.py`); verification then also compares it with
    host-side preparation.
    Raises `UniadError` (one line) on bad input, failed checks or Ctrl-C; nothing partial stays.
    """
    options = ExportOptions(
        out=Path(out_dir), name=name, batch=batch, precision=precision, half=half, opset=opset,
        verify=verify, data=None if data is None else Path(data), preset=preset,
        progress=progress, frame_size=frame_size, roi=roi,
    )  # fmt: skip
    return export_graph(ckpt, options, verify_batches)


def export_graph(
    ckpt: str | os.PathLike[str] | Checkpoint,
    options: ExportOptions,
    verify_batches: tuple[int, ...] | None = None,
) -> ExportResult:
    """`export_onnx` with its settings as one `ExportOptions` (what every format step gets)."""
    try:
        return _export(ckpt, options, verify_batches)
    except KeyboardInterrupt:
        raise UniadError("export interrupted; no .onnx or .json was left behind") from None


def _measured_frames(
    preset: Preset, count: int, data: Path | None, frame: FrameGeometry | None
) -> tuple[FrameBatch, np.ndarray, dict[str, FrameBatch]]:
    """What the checks run on: every frame for the range contract (verification frames, then
    stress frames), the verification frames, and each stress frame as a batch of one. With
    --frame-size the stress frames become camera frames only while a check reads them: 24 of
    48 MiB each at 4096x4096, held with their copies, took the export to 4.2 GiB."""
    frames = sample_frames(preset, count, data)
    stress = {name: image[None] for name, image in stress_frames(preset.input_size).items()}
    measured = np.concatenate([frames, *stress.values()])
    if frame is None:
        return measured, frames, stress
    lazy = {name: CameraFrames(one, frame) for name, one in stress.items()}
    return CameraFrames(measured, frame), camera_frames(frames, frame), lazy


def _export(
    ckpt_arg: str | os.PathLike[str] | Checkpoint,
    options: ExportOptions,
    verify_batches: tuple[int, ...] | None,
) -> ExportResult:
    out_dir, batch, opset, verify = options.out, options.batch, options.opset, options.verify
    half, data, report = options.is_half, options.data, options.report
    started = time.perf_counter()
    if batch is not None and batch < 1:
        raise UniadError(f"--batch {batch} must be at least 1 (omit it for a dynamic batch)")
    frame = geometry(options.frame_size, options.roi)
    report("loading checkpoint")
    ckpt = _resolve_checkpoint(ckpt_arg, options.preset)
    int8_images = _int8_images(ckpt, options, frame)  # before tracing: a bad folder costs none
    name = options.name or default_name(ckpt.path)
    onnx_path = out_dir / f"{name}.onnx"
    sidecar = onnx_path.with_suffix(".json")
    _check_writable(out_dir)
    baked = {} if frame is None else {"frame_size": frame.size, "roi": frame.roi}
    fused = FusedUniAD(ckpt.model.eval(), **baked).eval()

    report(f"exporting {ckpt.preset.name} to ONNX (opset {opset}, torch.export + onnxscript)")
    traced = trace_to_onnx(fused, batch, opset)
    report("folding constant weight slices and transposes")
    graph = fold_constants(traced)
    problems = graph_problems(graph, opset)
    if problems:
        raise UniadError(f"exported graph breaks the export contract: {'; '.join(problems)}")
    if verify:
        report("ONNX checker (full) and shape inference")
        check_graph(graph, opset)
    batches = verify_batches or ((batch,) if batch else DYNAMIC_VERIFY_BATCHES)
    # a --half or int8 graph is never built without its range contract
    frames, stress, contract = None, {}, None
    if verify or half or int8_images is not None:
        measured, frames, stress = _measured_frames(ckpt.preset, max(batches), data, frame)
        report("float16 range contract: float32 ranges on verification and stress frames")
        contract = range_contract(graph, measured, batch)
    fp32_meta = build_metadata(ckpt, name, batch, opset, "fp32", **baked)
    ranged = contract.pinned if contract else None
    fp32_meta = replace(fp32_meta, fp32_nodes=ranged, fp32_pins=fp32_pins(graph, ranged or ()))
    fp32_bytes = _serialize(graph, fp32_meta)
    final_bytes, metadata, nodes = fp32_bytes, fp32_meta, len(graph.graph.node)

    drift = host = rounded = None
    if half and frames is not None and contract is not None:
        report("converting to mixed precision (float16, float32 head and range-pinned nodes)")
        half_graph, contract, drift = half_within_contract(
            graph, frames[: batches[-1]], stress, batch, contract
        )
        report(f"{len(contract.pinned)} nodes kept float32 (float16 range contract)")
        head_types = head_float_types(half_graph)
        wide = sorted(k for k, v in head_types.items() if v != onnx.TensorProto.FLOAT)
        if wide:
            raise UniadError(f"distance head is not float32 in the --half graph: {wide}")
        if verify:
            check_graph(half_graph, opset)
        metadata = replace(
            fp32_meta,
            precision="fp16",
            fp32_nodes=contract.pinned,
            fp32_pins=fp32_pins(half_graph, contract.pinned),
        )
        final_bytes, nodes = _serialize(half_graph, metadata), len(half_graph.graph.node)

    quantized = None
    if int8_images is not None and contract is not None:
        quantized = _quantize(
            graph, fp32_bytes, int8_images, fp32_meta, ckpt.preset.taps, contract, options
        )
        if verify:
            check_graph(quantized.model, opset)
        metadata = replace(
            fp32_meta,
            precision="int8",
            int8=quantized.record,
            fp32_pins=fp32_pins(quantized.model, contract.pinned),
        )
        final_bytes = _serialize(quantized.model, metadata)
        nodes = len(quantized.model.graph.node)

    parity: list[Parity] = []
    if verify and frames is not None:
        report(f"verifying ONNX Runtime vs PyTorch at batch {', '.join(map(str, batches))}")
        parity = check_parity(fused, fp32_bytes, frames, batches)
        if frame is not None:
            report("comparing in-graph frame preparation with the host's (cv2 bilinear)")
            host, rounded = check_host_parity(fused, FusedUniAD(ckpt.model).eval(), frames, frame)

    report(f"writing {onnx_path} and {sidecar.name}")
    sidecar_data = {
        **metadata.to_dict(),
        "verification": {
            "parity": [p.__dict__ for p in parity],
            "half_drift": drift.__dict__ if drift else None,
            "host_preparation": host.__dict__ if host else None,
            "host_uint8_rounding": rounded.__dict__ if rounded else None,
            "fp16_range": contract.to_dict() if contract else None,
        },
    }
    with atomic_path(onnx_path) as tmp_onnx:
        tmp_onnx.write_bytes(final_bytes)  # written first, so a full disk names this file
        with atomic_path(sidecar) as tmp_json:
            tmp_json.write_text(json.dumps(sidecar_data, indent=2, sort_keys=True) + "\n")
    return ExportResult(
        onnx_path, sidecar, metadata, nodes, parity, drift, host, time.perf_counter() - started,
        traced_nodes=len(traced.graph.node), float32_nodes=len(graph.graph.node),
        int8=quantized,
    )  # fmt: skip


def _int8_images(
    ckpt: Checkpoint, options: ExportOptions, frame: FrameGeometry | None
) -> Int8Images | None:
    """--precision int8: the calibration and gate frames, read before any tracing."""
    if options.precision != "int8":
        return None
    folder = options.calib_data or default_calib_data(checkpoint_thresholds(ckpt))
    options.report(f"INT8: reading calibration and gate images from {folder}")
    images = int8_images(folder, ckpt.preset.input_size, options.calib_images, options.gate_images)
    if frame is not None:
        images.calibration = CameraFrames(images.calibration, frame)
        images.gate = CameraFrames(images.gate, frame)
    return images


def _quantize(
    graph: onnx.ModelProto,
    fp32_bytes: bytes,
    images: Int8Images,
    meta: ModelMetadata,
    taps: tuple[int, ...],
    contract: RangeContract,
    options: ExportOptions,
) -> Quantized:
    """The gated Q/DQ graph: the distance head and the range-pinned nodes stay float."""
    keep_float = [n.name for n in head_nodes(graph)] + list(contract.pinned)
    quantized = quantize_within_gate(
        graph, fp32_bytes, images, meta.thresholds, taps=taps, keep_float=keep_float,
        limits=options.int8_gate, fallback=options.int8_fallback, rank=options.int8_rank,
        batch=options.batch, report=options.report,
    )  # fmt: skip
    options.report(
        f"INT8: {quantized.record['quantized_nodes']} nodes quantized; {quantized.gate.describe()}"
    )
    return quantized
