"""Issue 14 audit: the export contract checker, handed one hand-built bad graph per rule.

(issue 9 added the TensorRT parser rules: uint8 only into Cast, opset <= 17; the uint8 case is
here too, the opset case in test_export_onnx.py.)

The clean graph is the fused model's shape in miniature (uint8 NHWC in, a LayerNormalization,
float map and score out); each case breaks exactly one rule and must be named by
`graph_problems` and refused by `check_graph`, while still passing the ONNX checker itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from uniad_edge.errors import UniadError
from uniad_edge.export.checks import check_graph, graph_problems


def _clean_parts() -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "offset"], ["shifted"]),
        helper.make_node("LayerNormalization", ["shifted", "gamma", "beta"], ["normed"], axis=-1),
        helper.make_node("ReduceSum", ["normed", "axis_c"], ["anomaly_map"], keepdims=0),
        helper.make_node("ReduceMax", ["anomaly_map"], ["score"], axes=[1, 2], keepdims=0),
    ]
    inits = [
        numpy_helper.from_array(np.zeros(3, np.float32), "offset"),
        numpy_helper.from_array(np.ones(3, np.float32), "gamma"),
        numpy_helper.from_array(np.zeros(3, np.float32), "beta"),
        numpy_helper.from_array(np.array([3], np.int64), "axis_c"),
    ]
    return nodes, inits


def _model(
    nodes: list[onnx.NodeProto],
    inits: list[onnx.TensorProto],
    inputs: tuple[str, ...] = ("image",),
    outputs: tuple[str, ...] = ("anomaly_map", "score"),
) -> onnx.ModelProto:
    shapes = {"anomaly_map": ["batch", 8, 8], "score": ["batch"]}
    graph = helper.make_graph(
        nodes,
        "contract",
        [helper.make_tensor_value_info(n, TensorProto.UINT8, ["batch", 8, 8, 3]) for n in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shapes.get(n)) for n in outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def clean() -> onnx.ModelProto:
    return _model(*_clean_parts())


def with_inf_initializer() -> onnx.ModelProto:
    nodes, inits = _clean_parts()
    inits[0] = numpy_helper.from_array(np.array([0, -np.inf, 0], np.float32), "offset")
    return _model(nodes, inits)


def with_nan_constant_node() -> onnx.ModelProto:
    nodes, inits = _clean_parts()
    inits.pop(0)
    value = numpy_helper.from_array(np.array([0, np.nan, 0], np.float32), "v")
    nodes.insert(0, helper.make_node("Constant", [], ["offset"], value=value))
    return _model(nodes, inits)


def with_loop() -> onnx.ModelProto:
    """A real (one-trip, identity) Loop carrying the cast frames, its output used downstream."""
    nodes, inits = _clean_parts()
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Identity", ["v_in"], ["v_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None),
        ],
    )
    inits += [
        numpy_helper.from_array(np.array(1, np.int64), "trips"),
        numpy_helper.from_array(np.array(True), "go"),
    ]
    nodes[1] = helper.make_node("Add", ["looped", "offset"], ["shifted"])
    nodes.insert(1, helper.make_node("Loop", ["trips", "go", "x"], ["looped"], body=body))
    return _model(nodes, inits)


def with_unused_output() -> onnx.ModelProto:
    nodes, inits = _clean_parts()
    nodes.insert(2, helper.make_node("Relu", ["shifted"], ["nobody_reads_this"]))
    return _model(nodes, inits)


def with_batchnorm() -> onnx.ModelProto:
    nodes, inits = _clean_parts()
    nodes[1] = helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2])
    nodes.insert(2, helper.make_node(
        "BatchNormalization", ["nchw", "gamma", "beta", "beta", "gamma"], ["bn"]
    ))  # fmt: skip
    nodes.insert(3, helper.make_node("Transpose", ["bn"], ["bn_nhwc"], perm=[0, 2, 3, 1]))
    nodes.insert(4, helper.make_node("Add", ["bn_nhwc", "offset"], ["shifted"]))
    return _model(nodes, inits)


def without_layernorm() -> onnx.ModelProto:
    nodes, inits = _clean_parts()
    nodes[2] = helper.make_node("Identity", ["shifted"], ["normed"])
    return _model(nodes, inits[:1] + inits[3:])


def with_second_input() -> onnx.ModelProto:
    nodes, inits = _clean_parts()
    nodes[1] = helper.make_node("Add", ["x", "x2"], ["sum"])
    nodes.insert(2, helper.make_node("Add", ["sum", "offset"], ["shifted"]))
    nodes.insert(1, helper.make_node("Cast", ["extra"], ["x2"], to=TensorProto.FLOAT))
    return _model(nodes, inits, inputs=("image", "extra"))


def with_uint8_into_transpose() -> onnx.ModelProto:
    """NHWC->NCHW on the uint8 frame before the Cast: TensorRT's parser refuses uint8 there."""
    nodes, inits = _clean_parts()
    nodes[0] = helper.make_node("Transpose", ["image"], ["frames"], perm=[0, 1, 2, 3])
    nodes.insert(1, helper.make_node("Cast", ["frames"], ["x"], to=TensorProto.FLOAT))
    return _model(nodes, inits)


def with_outputs_swapped() -> onnx.ModelProto:
    return _model(*_clean_parts(), outputs=("score", "anomaly_map"))


CASES: list[tuple[Callable[[], onnx.ModelProto], str]] = [
    (with_inf_initializer, "constant offset holds inf or NaN"),
    (with_nan_constant_node, "constant offset holds inf or NaN"),
    (with_loop, "has Loop nodes"),
    (with_unused_output, "1 nodes compute unused outputs"),
    (with_batchnorm, "has BatchNormalization nodes"),
    (without_layernorm, "has no LayerNormalization node"),
    (with_second_input, "inputs are ['image', 'extra']"),
    (with_outputs_swapped, "outputs are ['score', 'anomaly_map']"),
    (with_uint8_into_transpose, "uint8 tensor image feeds Transpose"),
]


def test_the_clean_graph_passes_every_rule() -> None:
    model = clean()
    assert graph_problems(model) == []
    check_graph(model)


@pytest.mark.parametrize(("build", "problem"), CASES, ids=[c[0].__name__ for c in CASES])
def test_each_broken_rule_is_named_and_refused(build, problem: str) -> None:
    model = build()
    onnx.checker.check_model(model, full_check=True)  # valid ONNX: only the contract objects
    problems = graph_problems(model)
    assert len(problems) == 1 and problem in problems[0], problems  # this rule and no other
    with pytest.raises(UniadError, match="breaks the export contract") as info:
        check_graph(model)
    assert problem in str(info.value)
