"""What every exported graph must satisfy, checked at export time and by the tests.

TensorRT and ONNX Runtime run it fastest (and at all) only without control flow, scatters,
unfolded BatchNorm or infinite constants; the runtime relies on exactly two outputs. The
TensorRT rules (`tensorrt_problems`) are the onnx-tensorrt parser's own: uint8 only as a network
input feeding Cast, no shape arithmetic (8.6 misreads it), an opset the target parses, only ops
it imports, weights already folded.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import UniadError
from ..metadata import INPUT_NAME, OUTPUT_MAP, OUTPUT_SCORE
from ..trt.parser_contract import RELEASES, SOURCES, WHEELS, ignored_attributes
from ..trt.parser_ops import PARSER_OPS_86, max_opset

TENSORRT_86_OPSET = 17
"""The newest opset the oldest supported TensorRT (8.6, JetPack 6.0) parses: the default."""
RESHUFFLE_OPS = ("Slice", "Transpose")
FORBIDDEN_OPS = ("BatchNormalization", "Loop", "Scan", "If", "ScatterND", "ScatterElements")
SHAPE_OPS = ("Shape", "ConstantOfShape", "Expand", "Tile", "Range", "NonZero")
"""Shape arithmetic: every tensor size is known per preset except the batch, which broadcasting
carries. TensorRT 8.6's Shape importer ignores `start`/`end` (opset 15), so a graph computing a
Resize size or an Expand target from a Shape breaks there; the others only ever feed such math."""


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


def opset_of(model: onnx.ModelProto) -> int:
    """The default-domain opset the graph imports."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def uint8_problems(model: onnx.ModelProto) -> list[str]:
    """The parser refuses uint8 intermediate tensors: a uint8 tensor may only feed Cast nodes."""
    graph = model.graph
    inferred = onnx.shape_inference.infer_shapes(model).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*inferred.input, *inferred.value_info]}
    types.update({t.name: t.data_type for t in graph.initializer})
    uint8 = {name for name, kind in types.items() if kind == onnx.TensorProto.UINT8}
    problems = []
    for node in graph.node:
        fed = [name for name in node.input if name in uint8]
        if fed and node.op_type != "Cast":
            problems.append(f"uint8 tensor {fed[0]} feeds {node.op_type} {node.name} (only Cast)")
    return problems


def folded_constant_problems(model: onnx.ModelProto) -> list[str]:
    """Slice/Transpose nodes whose data input is constant: weights the export should fold."""
    graph = model.graph
    constant = {t.name for t in graph.initializer}
    problems = []
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if node.op_type == "Constant" or (inputs and all(name in constant for name in inputs)):
            constant.update(node.output)
        if node.op_type in RESHUFFLE_OPS and inputs and inputs[0] in constant:
            problems.append(f"unfolded constant {node.op_type} {node.name} of {inputs[0]}")
    return problems


def constant_names(model: onnx.ModelProto) -> set[str]:
    """Names of the initializers and Constant-node outputs."""
    names = {t.name for t in model.graph.initializer}
    return names | {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}


def shape_arithmetic_problems(model: onnx.ModelProto) -> list[str]:
    """Shape-computing nodes, and Resize nodes whose scales or sizes are not constants."""
    constant = constant_names(model)
    problems = []
    for node in model.graph.node:
        if node.op_type in SHAPE_OPS:
            problems.append(f"shape arithmetic: {node.op_type} {node.name}")
        elif node.op_type == "Resize":
            given = [name for name in node.input[1:] if name]
            if not given or any(name not in constant for name in given):
                problems.append(f"Resize {node.name} has no constant scales or sizes")
    return problems


def _defaults(op_type: str, opset: int) -> dict[str, object]:
    """The ONNX schema's default value of each attribute of `op_type` that has one."""
    try:
        schema = onnx.defs.get_schema(op_type, opset)
    except onnx.defs.SchemaError:
        return {}
    return {
        name: onnx.helper.get_attribute_value(attr.default_value)
        for name, attr in schema.attributes.items()
        if attr.default_value.name
    }


def parser_contract_problems(model: onnx.ModelProto) -> list[str]:
    """Attributes set away from their default that a TensorRT release parsing this opset
    ignores (trt/parser_contract.py): that release would build a different graph."""
    opset = opset_of(model)
    releases = [r for r in RELEASES if opset <= max_opset(WHEELS[r])]
    problems = []
    for node in model.graph.node:
        values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        for release in releases:
            ignored = ignored_attributes(
                node.op_type, values, release, _defaults(node.op_type, opset)
            )
            if ignored:
                name = node.name or node.output[0]
                problems.append(
                    f"{node.op_type} {name} sets {', '.join(ignored)}, which TensorRT "
                    f"{release}'s parser ignores ({SOURCES[release]})"
                )
                break
    return problems


def tensorrt_problems(model: onnx.ModelProto, max_opset: int = TENSORRT_86_OPSET) -> list[str]:
    """Violations of the onnx-tensorrt parser's rules for a parser reading up to `max_opset`."""
    problems = uint8_problems(model) + shape_arithmetic_problems(model)
    problems += parser_contract_problems(model)
    opset = opset_of(model)
    if opset > max_opset:
        problems.append(f"opset {opset} is newer than the {max_opset} TensorRT parses")
    unknown = sorted({n.op_type for n in model.graph.node} - PARSER_OPS_86)
    if unknown:
        problems.append(f"has ops TensorRT 8.6's parser lacks: {', '.join(unknown)}")
    return problems + folded_constant_problems(model)


def graph_problems(model: onnx.ModelProto, max_opset: int = TENSORRT_86_OPSET) -> list[str]:
    """Human-readable violations of the export contract; empty when the graph is clean.

    `max_opset` is the newest opset allowed: 17 by default, the user's `--opset` when newer.
    """
    graph = model.graph
    problems = tensorrt_problems(model, max_opset)
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


def check_graph(model: onnx.ModelProto, max_opset: int = TENSORRT_86_OPSET) -> onnx.ModelProto:
    """onnx.checker (full) + strict shape inference + the contract; returns the inferred model."""
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UniadError(f"exported graph failed the ONNX checker: {first}") from None
    problems = graph_problems(model, max_opset)
    if problems:
        raise UniadError(f"exported graph breaks the export contract: {'; '.join(problems)}")
    return inferred
