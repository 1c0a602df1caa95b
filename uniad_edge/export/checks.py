"""What every exported graph must satisfy, checked at export time and by the tests.

TensorRT and ONNX Runtime run it fastest (and at all) only without control flow, scatters,
unfolded BatchNorm or infinite constants; the runtime relies on exactly two outputs.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import UniadError
from ..metadata import INPUT_NAME, OUTPUT_MAP, OUTPUT_SCORE

FORBIDDEN_OPS = ("BatchNormalization", "Loop", "Scan", "If", "ScatterND", "ScatterElements")


def constant_arrays(model: onnx.ModelProto) -> list[tuple[str, np.ndarray]]:
    """Every initializer and Constant-node tensor, as (name, array)."""
    arrays = [(t.name, numpy_helper.to_array(t)) for t in model.graph.initializer]
    for node in model.graph.node:
        if node.op_type != "Constant":
            continue
        for attr in node.attribute:
            if attr.name == "value":
                arrays.append((node.output[0], numpy_helper.to_array(attr.t)))
            elif attr.name in ("value_float", "value_floats"):
                arrays.append((node.output[0], np.asarray(onnx.helper.get_attribute_value(attr))))
    return arrays


def graph_problems(model: onnx.ModelProto) -> list[str]:
    """Human-readable violations of the export contract; empty when the graph is clean."""
    graph = model.graph
    problems = []
    ops = {n.op_type for n in graph.node}
    problems += [f"has {op} nodes" for op in FORBIDDEN_OPS if op in ops]
    if "LayerNormalization" not in ops:
        problems.append("has no LayerNormalization node (opset < 17 or unfused LayerNorm)")
    for name, array in constant_arrays(model):
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            problems.append(f"constant {name} holds inf or NaN")
    initializers = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initializers]
    if inputs != [INPUT_NAME]:
        problems.append(f"inputs are {inputs}, expected ['{INPUT_NAME}']")
    outputs = [o.name for o in graph.output]
    if outputs != [OUTPUT_MAP, OUTPUT_SCORE]:
        problems.append(f"outputs are {outputs}, expected ['{OUTPUT_MAP}', '{OUTPUT_SCORE}']")
    used = {name for n in graph.node for name in n.input} | set(outputs)
    dead = [n.name for n in graph.node if not any(o in used for o in n.output if o)]
    if dead:
        problems.append(f"{len(dead)} nodes compute unused outputs (e.g. {dead[0]})")
    return problems


def check_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnx.checker (full) + strict shape inference + the contract; returns the inferred model."""
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UniadError(f"exported graph failed the ONNX checker: {first}") from None
    problems = graph_problems(model)
    if problems:
        raise UniadError(f"exported graph breaks the export contract: {'; '.join(problems)}")
    return inferred
