"""Explicit-quantization INT8 ONNX: QuantizeLinear/DequantizeLinear pairs, gated on verdicts.

ONNX Runtime's QDQ quantizer (it ships with the lean install) writes symmetric int8 (zero point
0) activations and per-channel int8 weights around Conv/MatMul/Gemm, biases left float: the
graph TensorRT builds as INT8 (8.6 with its INT8 and FP16 flags, 10.x/11.x strongly typed)
and ONNX Runtime runs on the CPU. The distance head and the range-pinned nodes stay float.
Calibration runs once; its ranges are cached, so quantizing any subset of layer groups later
(the fallback's ranking) costs no second calibration. The gate (int8_gate.py) decides whether
the graph is written: missed, the export stops naming the worst image, or with `fallback`
keeps the groups that move the score most in float until it holds.
"""

from __future__ import annotations

import inspect
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..errors import UniadError
from ..metadata import Thresholds
from .int8_data import Int8Images
from .int8_gate import Gate, GateLimits, measure, thresholds_for
from .int8_groups import QUANTIZED_OPS, layer_groups
from .verify import FrameBatch, chunks, ort_session, run_ort

CHUNK = 4
DQ = "DequantizeLinear"
FALLBACK_HINT = (
    "pass --int8-fallback to keep the layers that move the score most in float, or export "
    "--precision fp16"
)
EXTRA_OPTIONS = {
    "ActivationSymmetric": True,  # zero point 0: what TensorRT's Q/DQ import requires
    "WeightSymmetric": True,
    "QuantizeBias": False,  # TensorRT folds float biases into its int8 kernels
    "AddQDQPairToWeight": False,  # int8 weights + DequantizeLinear: a quarter of the size
    "DedicatedQDQPair": False,
    "QDQKeepRemovableActivations": False,
    # Q/DQ on a weighted op's inputs only (TensorRT's recommended placement): its output stays
    # float, so the distance head reads float features and reconstruction, never int8 ones.
    "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS),
}


@dataclass
class Quantized:
    """The gated Q/DQ graph and what the sidecar records about it."""

    model: onnx.ModelProto
    record: dict[str, Any]
    gate: Gate


def scores(model_bytes: bytes, frames: FrameBatch, batch: int | None) -> np.ndarray:
    """ONNX Runtime CPU scores of `frames` (float64), padding dropped."""
    session = ort_session(model_bytes)
    out = [run_ort(session, chunk)[1].reshape(-1) for chunk in chunks(frames, batch, CHUNK)]
    return np.concatenate(out)[: len(frames)].astype(np.float64)


class _Reader:
    """ONNX Runtime's calibration data reader over in-memory frames."""

    def __init__(self, frames: FrameBatch, batch: int | None, input_name: str) -> None:
        self._batches = chunks(frames, batch, CHUNK)
        self._name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        chunk = next(self._batches, None)
        return None if chunk is None else {self._name: chunk}

    def __len__(self) -> int:  # read by ORT's strided calibration only
        return 0


@contextmanager
def _quiet() -> Iterator[None]:
    """The quantizer logs a pre-processing hint on every call; the export says what matters."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class Quantizer:
    """Q/DQ copies of one float32 graph for any subset of its nodes, on one calibration."""

    def __init__(
        self,
        graph: onnx.ModelProto,
        calibration: FrameBatch,
        batch: int | None,
        float_nodes: Sequence[str] = (),
    ) -> None:
        self._graph = graph
        self._float_nodes = set(float_nodes)
        self._folder = tempfile.TemporaryDirectory(prefix="uniad-int8-")
        self._cache = Path(self._folder.name) / "ranges.json"
        self._calibration = calibration
        self._batch = batch

    def close(self) -> None:
        self._folder.cleanup()

    def quantize(self, nodes: Sequence[str]) -> onnx.ModelProto:
        """The graph with Q/DQ pairs on `nodes` only (never empty: ORT reads that as all)."""
        if not nodes:
            raise ValueError("no nodes to quantize")
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
            raise UniadError(
                "this onnxruntime's quantizer has no calibration cache; INT8 export needs "
                'onnxruntime 1.32 or newer: pip install "uniad-edge[int8]"'
            )
        out = Path(self._folder.name) / "int8.onnx"
        reader = _Reader(self._calibration, self._batch, self._graph.graph.input[0].name)
        model = onnx.ModelProto()
        model.CopyFrom(self._graph)
        with _quiet():
            quantize_static(
                model,
                out,
                reader,
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTIZED_OPS),
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_quantize=list(nodes),
                extra_options=dict(EXTRA_OPTIONS),
                calibration_cache_path=self._cache,
            )
        quantized = onnx.load(out)
        float_inputs(quantized, self._float_nodes)
        return quantized


def float_inputs(model: onnx.ModelProto, names: set[str]) -> int:
    """Give the nodes `names` (the head, the range-pinned) the float tensors they read in the
    float32 graph. The quantizer shares one Q/DQ pair among every consumer of a tensor (its
    dedicated pairs too are made for every consumer), so a float node reading a tensor a Conv
    also reads would get its int8-rounded copy. Returns how many inputs were rewired."""
    producers = {out: node for node in model.graph.node for out in node.output}
    rewired = 0
    for node in model.graph.node:
        if node.name not in names:
            continue
        for index, name in enumerate(node.input):
            dq = producers.get(name)
            q = producers.get(dq.input[0]) if dq is not None and dq.op_type == DQ else None
            if q is not None and q.op_type == "QuantizeLinear":
                node.input[index] = q.input[0]
                rewired += 1
    return rewired


def qdq_counts(model: onnx.ModelProto) -> dict[str, int]:
    """How many QuantizeLinear and DequantizeLinear nodes a graph holds."""
    ops = [n.op_type for n in model.graph.node]
    return {op: ops.count(op) for op in ("QuantizeLinear", "DequantizeLinear")}


def quantize_within_gate(
    graph: onnx.ModelProto,
    float32_bytes: bytes,
    images: Int8Images,
    thresholds: Thresholds,
    *,
    taps: Sequence[int],
    keep_float: Sequence[str],
    limits: GateLimits,
    fallback: bool,
    rank: bool,
    batch: int | None,
    report: Callable[[str], None],
) -> Quantized:
    """The Q/DQ graph of every layer group the gate allows (all of them unless `fallback`),
    or a one-line `UniadError` naming the worst image. The groups are ranked by how much each
    alone moves the score when the fallback needs it, or always with `rank` (recorded)."""
    groups = layer_groups(graph, taps, keep_float)
    if not groups:
        raise UniadError("no Conv/MatMul outside the float nodes to quantize; export fp16")
    reference = scores(float32_bytes, images.gate, batch)
    labels = images.gate_labels
    per_image, source = thresholds_for(thresholds, images.gate_classes, reference, labels)
    quantizer = Quantizer(graph, images.calibration, batch, keep_float)

    def judge(names: Sequence[str]) -> tuple[onnx.ModelProto, Gate]:
        model = quantizer.quantize([n for g in names for n in groups[g]])
        got = scores(model.SerializeToString(), images.gate, batch)
        return model, measure(reference, got, labels, per_image, source, images.gate_paths)

    try:
        report(f"INT8: calibrating on {len(images.calibration)} images, gating on "
               f"{len(images.gate)} held-out ({int(labels.sum())} defective)")  # fmt: skip
        chosen = list(groups)
        model, gate = judge(chosen)
        whole = gate
        missed = gate.misses(limits)
        if missed and not fallback:
            raise UniadError(_refusal(gate, limits))
        ranking: dict[str, float] | None = None
        if missed or rank:
            why = f"the whole graph misses the gate ({'; '.join(missed)}); " if missed else ""
            report(f"INT8: {why}ranking layer groups by how much each alone moves the score")
            ranking = {g: judge([g])[1].p99_score_change for g in groups}
        worst_first = sorted(ranking, key=ranking.__getitem__, reverse=True) if ranking else []
        for worst in worst_first:
            if not gate.misses(limits):
                break
            chosen.remove(worst)
            if not chosen:
                raise UniadError(_refusal(gate, limits, every_group=True))
            report(f"INT8: keeping {worst} in float")
            model, gate = judge(chosen)
    finally:
        quantizer.close()
    record = _record(groups, chosen, gate, limits, ranking)
    if whole is not gate:  # the fallback ran: what every group in INT8 did, for comparison
        record["whole_graph_gate"] = whole.to_dict()
    record["calibration"] = {"data": images.source, "images": len(images.calibration)}
    return Quantized(model, record, gate)


def _refusal(gate: Gate, limits: GateLimits, every_group: bool = False) -> str:
    what = "even one layer group in INT8" if every_group else "INT8"
    fix = "export --precision fp16" if every_group else FALLBACK_HINT
    return (
        f"{what} misses the gate: {'; '.join(gate.misses(limits))}; worst image {gate.worst} "
        f"(score moved {gate.worst_change:.3f} of its threshold); nothing was written; {fix}"
    )


def _record(
    groups: dict[str, list[str]],
    chosen: list[str],
    gate: Gate,
    limits: GateLimits,
    ranking: dict[str, float] | None,
) -> dict[str, Any]:
    import onnxruntime

    return {
        "quantizer": f"onnxruntime {onnxruntime.__version__} QDQ: symmetric int8, per-channel "
        "weights, MinMax calibration",
        "quantized": chosen,
        "float": [g for g in groups if g not in chosen],
        "quantized_nodes": sum(len(groups[g]) for g in chosen),
        "gate": gate.to_dict(),
        "limits": asdict(limits),
        "ranking": ranking,
    }
