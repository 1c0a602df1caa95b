"""Layer groups an INT8 export quantizes or leaves in float, found in the folded ONNX graph.

The exporter's node names carry no module path, so groups come from what survives folding:
a convolution's weight keeps its parameter name (`...backbone._blocks.N...`, the 1x1
`input_proj`/`output_proj`), which places it in a backbone stage (the blocks up to each tapped
block) or a projection; in the transformer, a MatMul of two activations is attention, a
weighted MatMul next to a Relu is the feed-forward network, the rest attention's projections.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import onnx

QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
"""The ops whose inputs get Q/DQ pairs: where TensorRT and ONNX Runtime run integer kernels."""
INPUT_PROJECTION = "input projection"
OUTPUT_PROJECTION = "output projection"
ATTENTION = "attention"
FEED_FORWARD = "feed-forward"
OTHER = "other"
_BLOCK = re.compile(r"backbone\.(?:.*\.)?_blocks\.(\d+)\.")
_HOPS = 2  # a bias Add (or an Identity) may sit between a MatMul and its Relu
_PASS = ("Add", "Identity")


def _stage_name(block: int, taps: Sequence[int]) -> str:
    lower = -1
    for index, tap in enumerate(taps):
        if block <= tap:
            return f"backbone stage {index + 1} (blocks {lower + 1}-{tap})"
        lower = tap
    return f"backbone after block {taps[-1]}"


def _near(start: str, edges: dict[str, list[onnx.NodeProto]], op: str, forward: bool) -> bool:
    """Whether a node of `op` is within `_HOPS` nodes of tensor `start`, following `edges`
    (consumers when `forward`, producers otherwise)."""
    frontier = [start]
    for _ in range(_HOPS + 1):
        nodes = [n for t in frontier for n in edges.get(t, [])]
        if any(n.op_type == op for n in nodes):
            return True
        passing = [n for n in nodes if n.op_type in _PASS]
        frontier = [t for n in passing for t in (n.output if forward else n.input)]
    return False


def layer_groups(
    model: onnx.ModelProto, taps: Sequence[int], skip: Sequence[str] = ()
) -> dict[str, list[str]]:
    """Group name -> names of the quantizable nodes in it (graph order), leaving out `skip`."""
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    producers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
        for name in node.output:
            producers.setdefault(name, []).append(node)
    skipped = set(skip)
    candidates = [n for n in graph.node if n.op_type in QUANTIZED_OPS and n.name not in skipped]
    weighted = {n.name for n in candidates if any(i in weights for i in n.input)}
    groups: dict[str, list[str]] = {}
    for node in candidates:
        groups.setdefault(_group(node, weights, taps, weighted, consumers, producers), []).append(
            node.name
        )
    return groups


def _group(
    node: onnx.NodeProto,
    weights: set[str],
    taps: Sequence[int],
    weighted: set[str],
    consumers: dict[str, list[onnx.NodeProto]],
    producers: dict[str, list[onnx.NodeProto]],
) -> str:
    if node.op_type == "Conv":
        if any("input_proj" in i for i in node.input if i in weights):
            return INPUT_PROJECTION
        if any("output_proj" in i for i in node.input if i in weights):
            return OUTPUT_PROJECTION
        named = [_BLOCK.search(i) for i in node.input if i in weights]
        block = next((int(m.group(1)) for m in named if m), None)
        if block is not None:
            return _stage_name(block, taps)
        stem = any("backbone" in i for i in node.input if i in weights)
        return _stage_name(0, taps) if stem else OTHER  # the stem runs before block 0
    if node.name not in weighted:
        return ATTENTION
    after = _near(node.output[0], consumers, "Relu", forward=True)
    if after or _near(node.input[0], producers, "Relu", forward=False):
        return FEED_FORWARD
    return ATTENTION
