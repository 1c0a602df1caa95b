"""Constant folding after tracing: weight Slice/Transpose nodes become plain initializers.

The exporter slices each attention block's packed in_proj weight into q/k/v and transposes linear
weights at run time; TensorRT would fold some of that itself, but every builder, ONNX Runtime
session and reviewer of the graph pays for it. onnxscript's optimizer (already the exporter's)
folds them; model metadata and node names (the `/distance_head/` prefix) survive it.
"""

from __future__ import annotations

import logging

import onnx

from ..metadata import INPUT_NAME

FOLD_SIZE_LIMIT = 1 << 28
"""Element limit for folded tensors: the largest UniAD weight is ~1M elements, so all fold."""
SHAPE_ONLY_OPS = ("Shape", "Size")


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """A folded copy of `model` (node count drops; metadata_props kept)."""
    from onnxscript import optimizer

    logger = logging.getLogger("onnxscript")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        folded = optimizer.optimize(
            model, input_size_limit=FOLD_SIZE_LIMIT, output_size_limit=FOLD_SIZE_LIMIT
        )
    finally:
        logger.setLevel(level)
    if len(folded.metadata_props) != len(model.metadata_props):
        del folded.metadata_props[:]
        folded.metadata_props.extend(model.metadata_props)
    return folded


def read_shape_after_cast(model: onnx.ModelProto, name: str = INPUT_NAME) -> int:
    """Make Shape/Size nodes read the uint8 input's Cast output instead of the input itself.

    TensorRT takes a uint8 network input only into a Cast; the exporter takes the dynamic batch
    size from the graph input. A Cast keeps the shape, so the answer is the same. Returns how
    many nodes were rewired.
    """
    cast = next((n for n in model.graph.node if n.op_type == "Cast" and n.input[0] == name), None)
    if cast is None:
        return 0
    moved = 0
    for node in model.graph.node:
        if node.op_type in SHAPE_ONLY_OPS and node.input and node.input[0] == name:
            node.input[0] = cast.output[0]
            moved += 1
    if moved:
        _move_first(model.graph, cast)
    return moved


def _move_first(graph: onnx.GraphProto, cast: onnx.NodeProto) -> None:
    """Put the Cast first so its output exists before the rewired readers (topological order)."""
    nodes = [n for n in graph.node if n is not cast]
    copy = onnx.NodeProto()
    copy.CopyFrom(cast)
    del graph.node[:]
    graph.node.extend([copy, *nodes])
