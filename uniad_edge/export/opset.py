"""Opset 17 from the exporter's opset 18 graph: what TensorRT 8.6 (JetPack 6.0) can parse.

torch's exporter writes opset 18 natively and its own down-conversion fails on this graph (no Pad
adapter) and then silently keeps 18. Between 17 and 18 only the reductions changed for this model:
their `axes` moved from an attribute to an input. TensorRT 8.6's parser reads `axes` only as the
attribute (an axes input is ignored and every axis is reduced), so here it moves back, and any
other op whose schema changed at 18 is refused rather than guessed at.
"""

from __future__ import annotations

import onnx
from onnx import defs, numpy_helper

from ..errors import UniadError

NATIVE_OPSET = 18
REDUCTIONS = {
    "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
    "ReduceMin", "ReduceProd", "ReduceSumSquare",
}  # fmt: skip
RESIZE_18_DEFAULTS = {"antialias": 0, "keep_aspect_ratio_policy": b"stretch"}
"""Resize attributes new in 18; the exporter writes them at these values, which mean opset 17's
behaviour, so they are dropped (any other value, or `axes`, has no opset 17 form)."""


def _default_domain_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _reduction_to_17(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> None:
    """Move a reduction's `axes` input into the attribute opset 17 reads."""
    for attr in list(node.attribute):
        if attr.name == "noop_with_empty_axes":
            if attr.i:
                raise UniadError(f"{node.name}: noop_with_empty_axes=1 has no opset 17 form")
            node.attribute.remove(attr)
    if len(node.input) < 2 or not node.input[1]:
        return
    axes_name = node.input[1]
    if axes_name not in constants:
        raise UniadError(f"{node.name}: reduction axes '{axes_name}' are not a constant")
    axes = [int(a) for a in numpy_helper.to_array(constants[axes_name]).ravel()]
    del node.input[1:]
    node.attribute.append(onnx.helper.make_attribute("axes", axes))


def _changed_at_18(op_type: str) -> bool:
    try:
        return defs.get_schema(op_type, NATIVE_OPSET).since_version == NATIVE_OPSET
    except defs.SchemaError:
        return False


def _same_at_17(node: onnx.NodeProto) -> bool:
    """Drop a Resize's default-valued opset-18 attributes; True when the node means the same."""
    if node.op_type == "Pad":
        return len(node.input) < 4  # the 4th input (axes) is new in 18
    if node.op_type != "Resize":
        return False
    for attr in list(node.attribute):
        if attr.name == "axes":
            return False
        if attr.name in RESIZE_18_DEFAULTS:
            if onnx.helper.get_attribute_value(attr) != RESIZE_18_DEFAULTS[attr.name]:
                return False
            node.attribute.remove(attr)
    return True


def _check_same_meaning(node: onnx.NodeProto) -> None:
    if _same_at_17(node):
        return
    raise UniadError(
        f"{node.name} ({node.op_type}) uses opset 18 features with no opset 17 form; "
        "export with --opset 18 (TensorRT 10 or newer)"
    )


def downgrade_to_17(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite an opset-18 graph as opset 17 in place (and return it); a no-op below 18."""
    opset = _default_domain_opset(model)
    if opset <= 17:
        return model
    if opset != NATIVE_OPSET:
        raise UniadError(f"cannot lower an opset {opset} graph to 17; export at opset 18 first")
    constants = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                constants[node.output[0]] = value
    used_as_axes = set()
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type in REDUCTIONS:
            if len(node.input) > 1:
                used_as_axes.add(node.input[1])
            _reduction_to_17(node, constants)
        elif _changed_at_18(node.op_type):
            _check_same_meaning(node)
    _drop_unused_constants(model, used_as_axes)
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = 17
    return model


def _drop_unused_constants(model: onnx.ModelProto, names: set[str]) -> None:
    """The axes tensors that only fed reductions are now unused."""
    graph = model.graph
    still_used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    dead = names - still_used
    keep = [t for t in model.graph.initializer if t.name not in dead]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    nodes = [n for n in model.graph.node if not (n.op_type == "Constant" and n.output[0] in dead)]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
