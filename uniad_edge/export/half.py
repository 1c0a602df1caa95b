"""Mixed-precision ONNX: float16 where it is safe, float32 where float16 overflows or drifts.

The distance head sums up to 720 squared differences (over 65504 in float16), so it stays float32
with the outputs; so do the nodes the range contract pins (fp16_range.py: a float32 range near
float16's limit); LayerNormalization keeps stash_type=1 (statistics in float32). This is the
graph a strongly typed TensorRT network and ONNX Runtime's CUDA provider consume.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from ..errors import UniadError
from .graph import head_nodes

FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)


def to_mixed_precision(model: onnx.ModelProto, keep_fp32: Sequence[str] = ()) -> onnx.ModelProto:
    """A float16 copy of `model` with the distance head, the `keep_fp32` nodes, inputs and
    outputs left float32."""
    # Ships with onnxruntime (a base dependency), so no extra converter package is needed.
    from onnxruntime.transformers.float16 import convert_float_to_float16

    blocked = [n.name for n in head_nodes(model)]
    if not blocked:
        raise UniadError("no /distance_head/ nodes in the graph; cannot keep the head float32")
    blocked += [name for name in keep_fp32 if name not in blocked]
    for node in model.graph.node:
        if node.op_type == "LayerNormalization":
            stash = [a for a in node.attribute if a.name == "stash_type"]
            if stash and stash[0].i != onnx.TensorProto.FLOAT:
                raise UniadError(f"{node.name}: LayerNormalization statistics are not float32")
    half = onnx.ModelProto()
    half.CopyFrom(model)
    del half.graph.value_info[:]  # float32 annotations from the exporter would contradict
    converted = convert_float_to_float16(half, keep_io_types=True, node_block_list=blocked)
    drop_round_trips(converted.graph)
    topological_sort(converted.graph)
    return converted


def _cast_to(node: onnx.NodeProto) -> int | None:
    if node.op_type != "Cast":
        return None
    return next((a.i for a in node.attribute if a.name == "to"), None)


def drop_round_trips(graph: onnx.GraphProto) -> int:
    """Remove float32 -> float16 -> float32 Cast pairs between two float32 nodes.

    The converter casts every output of a blocked node to float16 and back for the next
    blocked node, so a float32 value beyond 65504 (the head's sum of squares, a pinned
    attention logit) would become inf on the way. The cast back reads what the cast-down read
    (a float32 to float32 Cast is exact); casts left without consumers are removed. Returns how
    many were bypassed.
    """
    producers = {out: node for node in graph.node for out in node.output}
    bypassed = 0
    for node in graph.node:
        down = producers.get(node.input[0]) if _cast_to(node) == onnx.TensorProto.FLOAT else None
        if down is None or _cast_to(down) != onnx.TensorProto.FLOAT16:
            continue
        # Cast what the cast-down read (float32, or an integer input) straight to float32.
        node.input[0] = down.input[0]
        bypassed += 1
    _drop_unused_casts(graph, {o.name for o in graph.output})
    return bypassed


def _drop_unused_casts(graph: onnx.GraphProto, outputs: set[str]) -> None:
    while True:
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [n for n in graph.node if n.op_type == "Cast" and n.output[0] not in used]
        if not dead:
            return
        for node in dead:
            graph.node.remove(node)


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
