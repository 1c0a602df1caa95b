"""The float16 range contract: which nodes must stay float32 in a float16 model.

The float32 graph runs (ONNX Runtime, CPU) on the verification frames plus the stress frames,
and every float tensor's largest |value| is recorded. A node that reads or writes a tensor
within `SAFETY_FACTOR` of float16's largest value is kept float32: in the `--half` graph (the
converter's block list) and, on TensorRT 8.6, by per-layer precision. Keeping both the producer
and every consumer of a large tensor float32 means it is never cast to float16 on the way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import UniadError
from ..metadata import INPUT_NAME
from ..parity import Parity
from .graph import head_nodes
from .half import to_mixed_precision
from .verify import FrameBatch, check_half_drift, chunks

FLOAT16_MAX = 65504.0
SAFETY_FACTOR = 16.0
"""Headroom below float16's 65504 (4 binades): a tensor whose largest |value| on the
verification and stress frames exceeds 65504 / 16 = 4094 stays float32. The stress frames are
the extremes we could think of, not every frame a camera will see; a 16x brighter excursion
than the worst of them is what this margin absorbs before float16 would overflow."""
FLOAT32_LOWEST = float(np.finfo(np.float32).max)
"""Masked attention logits are exactly float32's lowest (the converter maps that sentinel to
float16's lowest); values of exactly this magnitude carry no range and are not counted."""
RANGE_SUFFIX = "__fp16_range"


@dataclass(frozen=True)
class RangeContract:
    """Largest |value| per float tensor and node, and the nodes pinned to float32 because of it."""

    limit: float
    tensor_ranges: dict[str, float]
    node_ranges: dict[str, float]
    pinned: list[str] = field(default_factory=list)

    def closest(self) -> tuple[str, float]:
        """The node nearest to (or furthest over) the limit: what a failed check names."""
        if not self.node_ranges:
            return "", 0.0
        name = max(self.node_ranges, key=lambda n: _order(self.node_ranges[n]))
        return name, self.node_ranges[name]

    def describe_closest(self) -> str:
        name, peak = self.closest()
        if not name:
            return "no float node was measured"
        state = "kept float32" if name in self.pinned else "float16"
        return (
            f"node {name} reaches |value| {peak:.3g} in float32 ({state}; float16 limit "
            f"{FLOAT16_MAX:g} / safety factor {SAFETY_FACTOR:g} = {self.limit:g})"
        )

    def to_dict(self) -> dict[str, object]:
        top = sorted(self.node_ranges.items(), key=lambda kv: _order(kv[1]), reverse=True)[:10]
        return {
            "limit": self.limit,
            "safety_factor": SAFETY_FACTOR,
            "pinned": list(self.pinned),
            "largest": {k: _jsonable(v) for k, v in top},
        }


def _order(value: float) -> float:
    return math.inf if math.isnan(value) else value


def _jsonable(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def magnitude(values: np.ndarray) -> float:
    """Largest |value| (NaN and inf count as inf), not counting the float32 lowest sentinel."""
    data = np.abs(np.asarray(values, np.float64))
    if data.size == 0:
        return 0.0
    if np.isnan(data).any():
        return math.inf
    data = data[data != FLOAT32_LOWEST]
    return float(data.max()) if data.size else 0.0


def float_tensors(model: onnx.ModelProto) -> list[str]:
    """Names of the float32 tensors that nodes compute, in graph order."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in [*inferred.graph.value_info, *inferred.graph.output]
    }
    return [
        name
        for node in model.graph.node
        for name in node.output
        if name and types.get(name) == TensorProto.FLOAT
    ]


def _probe_nodes(name: str, index: int, sentinel: str, inf: str, zero: str) -> list:
    """Nodes reducing tensor `name` to one scalar output: max |x|, NaN as inf, the lowest
    sentinel as 0."""
    p = f"{RANGE_SUFFIX}{index}"
    return [
        helper.make_node("Abs", [name], [f"{p}_abs"], name=f"{p}_Abs"),
        helper.make_node("Equal", [f"{p}_abs", sentinel], [f"{p}_eq"], name=f"{p}_Eq"),
        helper.make_node("Where", [f"{p}_eq", zero, f"{p}_abs"], [f"{p}_w"], name=f"{p}_W"),
        helper.make_node("IsNaN", [name], [f"{p}_nan"], name=f"{p}_IsNaN"),
        helper.make_node("Where", [f"{p}_nan", inf, f"{p}_w"], [f"{p}_v"], name=f"{p}_V"),
        helper.make_node("ReduceMax", [f"{p}_v"], [f"{p}_max"], name=f"{p}_Max", keepdims=0),
    ]


def _range_graph(model: onnx.ModelProto, tensors: list[str]) -> onnx.ModelProto:
    """`model` plus one scalar output per tensor (see `_probe_nodes`), reduced inside the
    graph so no large intermediate is kept as an output.

    Each probe follows its tensor's producer in the node list, and `tensor_ranges` runs the
    session in that order (priority-based, ties by node index): ONNX Runtime's default order
    walks back from the last output first, which runs the whole model before any probe and so
    keeps every intermediate alive at once (21.8 GB at mvtec-512, 3 GB at mvtec-224)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    graph = probe.graph
    del graph.output[:]
    sentinel, inf, zero = (f"{RANGE_SUFFIX}_{n}" for n in ("sentinel", "inf", "zero"))
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(FLOAT32_LOWEST, np.float32), sentinel),
            numpy_helper.from_array(np.array(np.inf, np.float32), inf),
            numpy_helper.from_array(np.array(0.0, np.float32), zero),
        ]
    )
    index = {name: i for i, name in enumerate(tensors)}
    nodes = []
    for node in model.graph.node:
        nodes.append(node)
        for name in node.output:
            if name in index:
                nodes.extend(_probe_nodes(name, index[name], sentinel, inf, zero))
    del graph.node[:]
    graph.node.extend(nodes)
    graph.output.extend(
        helper.make_tensor_value_info(f"{RANGE_SUFFIX}{i}_max", TensorProto.FLOAT, [])
        for i in range(len(tensors))
    )
    return probe


RANGE_CHUNK = 1
"""Frames per run of a dynamic-batch probe: its peak memory grows with the chunk, its speed
hardly (mvtec-224, 21 frames: 0.55 GB peak in 61 s at 1, 0.70 GB in 56 s at 4)."""


def tensor_ranges(
    model: onnx.ModelProto, frames: FrameBatch, batch: int | None
) -> dict[str, float]:
    """Largest |value| of every float32 tensor (computed or initializer) over `frames`.

    `batch` is the graph's static batch (frames are fed in chunks of it, the last padded by
    repeating frames) or None (`RANGE_CHUNK` frames at a time). Only the running maxima are
    kept between chunks.
    """
    import onnxruntime as ort

    tensors = float_tensors(model)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.execution_order = ort.ExecutionOrder.PRIORITY_BASED  # the node list's order
    session = ort.InferenceSession(
        _range_graph(model, tensors).SerializeToString(),
        options,
        providers=["CPUExecutionProvider"],
    )
    peaks = np.zeros(len(tensors), np.float64)
    for chunk in chunks(frames, batch, RANGE_CHUNK):
        peaks = np.maximum(peaks, np.array(session.run(None, {INPUT_NAME: chunk}), np.float64))
    del session
    ranges = {
        name: (math.inf if math.isnan(p) else float(p))
        for name, p in zip(tensors, peaks, strict=True)
    }
    for init in model.graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            ranges[init.name] = magnitude(numpy_helper.to_array(init))
    return ranges


def range_contract(
    model: onnx.ModelProto,
    frames: FrameBatch,
    batch: int | None,
    safety_factor: float = SAFETY_FACTOR,
    ranges: dict[str, float] | None = None,
) -> RangeContract:
    """Measure `model` (the float32 graph) on `frames` (or take its measured `ranges`) and pin
    every node touching a tensor above float16's max / `safety_factor`. The distance head is
    float32 anyway: not listed."""
    limit = FLOAT16_MAX / safety_factor
    ranges = tensor_ranges(model, frames, batch) if ranges is None else ranges
    head = {node.name for node in head_nodes(model)}
    node_ranges: dict[str, float] = {}
    pinned: list[str] = []
    for node in model.graph.node:
        touched = [ranges[t] for t in [*node.input, *node.output] if t in ranges]
        if not touched or node.name in head:
            continue
        peak = max(touched, key=_order)
        node_ranges[node.name] = peak
        if not peak <= limit:  # NaN and inf are over every limit
            pinned.append(node.name)
    return RangeContract(limit, ranges, node_ranges, pinned)


ESCALATION_ROUNDS = 4
"""Safety factors tried in turn: 16, 256, 4096, 65536. Range alone is not enough for an
ill-conditioned model (attention logits of 1e7 make softmax an argmax that float16 rounding of
its inputs flips), so while the drift check fails, every node above a 16x lower limit is kept
float32 too, up to nodes of |value| <= 1 (nearly all): correct, if then hardly faster."""


def half_within_contract(
    model: onnx.ModelProto,
    frames: np.ndarray,
    stress: dict[str, FrameBatch],
    batch: int | None,
    measured: RangeContract,
) -> tuple[onnx.ModelProto, RangeContract, Parity]:
    """The `--half` graph of `model` that passes the drift check on `frames` and each stress
    frame, with the contract it was built under; `UniadError` (one line, naming the frame and
    the node nearest float16's limit) when none does."""
    fp32_bytes = model.SerializeToString()
    failure: UniadError | None = None
    tried: list[str] | None = None
    for round_ in range(ESCALATION_ROUNDS):
        factor = SAFETY_FACTOR ** (round_ + 1)
        contract = range_contract(model, frames, batch, factor, measured.tensor_ranges)
        if contract.pinned == tried:
            continue
        tried = contract.pinned
        half = to_mixed_precision(model, contract.pinned)
        try:
            drift = check_half_drift(
                fp32_bytes, half.SerializeToString(), frames, batch=batch, stress=stress,
                culprit=measured.describe_closest(),
            )  # fmt: skip
        except UniadError as exc:
            # Without its traceback: the frames it holds keep that round's two sessions alive.
            failure = exc.with_traceback(None)
            continue
        return half, contract, drift
    raise failure or UniadError("no --half graph could be built")
