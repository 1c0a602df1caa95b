"""Mixed-precision ONNX: float16 where it is safe, float32 where float16 overflows or drifts.

The distance head sums up to 720 squared differences (over 65504 in float16), so it stays float32
with the outputs; LayerNormalization keeps stash_type=1 (statistics in float32). This is the
graph a strongly typed TensorRT network and ONNX Runtime's CUDA provider consume.
"""

from __future__ import annotations

import onnx

from ..errors import UniadError
from .graph import head_nodes

FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)


def to_mixed_precision(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float16 copy of `model` with the distance head, inputs and outputs left float32."""
    # Ships with onnxruntime (a base dependency), so no extra converter package is needed.
    from onnxruntime.transformers.float16 import convert_float_to_float16

    blocked = [n.name for n in head_nodes(model)]
    if not blocked:
        raise UniadError("no /distance_head/ nodes in the graph; cannot keep the head float32")
    for node in model.graph.node:
        if node.op_type == "LayerNormalization":
            stash = [a for a in node.attribute if a.name == "stash_type"]
            if stash and stash[0].i != onnx.TensorProto.FLOAT:
                raise UniadError(f"{node.name}: LayerNormalization statistics are not float32")
    half = onnx.ModelProto()
    half.CopyFrom(model)
    del half.graph.value_info[:]  # float32 annotations from the exporter would contradict
    converted = convert_float_to_float16(half, keep_io_types=True, node_block_list=blocked)
    topological_sort(converted.graph)
    return converted


def topological_sort(graph: onnx.GraphProto) -> None:
    """The converter appends its Cast nodes at the end; the checker wants producers first."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        remaining = [n for n in pending if not all(i in ready for i in n.input)]
        progressed = [n for n in pending if all(i in ready for i in n.input)]
        if not progressed:
            raise UniadError(f"graph has a cycle or a dangling input at {remaining[0].name}")
        for node in progressed:
            ordered.append(node)
            ready.update(node.output)
        pending = remaining
    copies = [onnx.NodeProto() for _ in ordered]
    for copy, node in zip(copies, ordered, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def head_float_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every floating-point tensor the distance head reads or writes."""
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in [*graph.input, *graph.output, *graph.value_info]
    }
    types.update({t.name: t.data_type for t in graph.initializer})
    names = {name for n in head_nodes(inferred) for name in [*n.input, *n.output] if name}
    return {name: types[name] for name in names if types.get(name) in FLOAT_TYPES}
