"""What onnx-tensorrt's importer does with each op uniad-edge's graphs use, per TensorRT release:
the attributes it reads (any other attribute is silently ignored) and how it names the layers
it adds. The export refuses a graph that relies on an ignored attribute; the fake parsers of
the tests follow the same table; the FP32 pins of an FP16 build match layers by it.

Facts read from onnx/onnx-tensorrt's source (never copied):
- 8.6: branch 8.6-GA (ee0b139b), builtin_op_importers.cpp (importers), onnx2trt_utils.cpp
  (helpers: getKernelParams, reduceTensor, poolingHelper, addSoftmax, broadcastTensors),
  ImporterContext.{hpp,cpp} (registerLayer, generateUniqueName), ModelImporter.cpp (outputs).
- 10.3: branch 10.1-GA (96e7811), onnxOpImporters.cpp and importerUtils.cpp; no 10.2/10.3
  branch is stored, so 10.3 is taken as 10.1-GA.
- 10.x (newest stored): 10.6 (commit 0137504e, CMakeLists ONNX2TRT 10.6.0), onnxOpImporters.cpp,
  read for LayerNormalization (registered, as in 10.1-GA), Transpose, Unsqueeze and Tile; the
  other rows as 10.1-GA.
- 11.x: no 11.x importer source is stored; taken as 10.x (TensorRT 11 changed the builder's
  typing, not these importers, per its wheel's surface). Only a real 11.x parser can confirm it.
Common to every release: registerLayer(layer, node) names a layer after its node, and a name
already taken becomes `name_N` (generateUniqueName, one counter for the whole network); a layer
added without registerLayer keeps TensorRT's default name ("(Unnamed Layer* 12) [Shuffle]");
every node output tensor is named after its ONNX output (ModelImporter registerTensor).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RELEASES = ("8.6", "10.3", "10.x", "11.x")
SOURCES = {
    "8.6": "onnx-tensorrt 8.6-GA builtin_op_importers.cpp",
    "10.3": "onnx-tensorrt 10.1-GA onnxOpImporters.cpp",
    "10.x": "onnx-tensorrt 10.6 (0137504e) onnxOpImporters.cpp",
    "11.x": "as 10.x (no 11.x source stored)",
}
WHEELS = {"8.6": "8.6.1", "10.3": "10.3.0", "10.x": "10.16.1", "11.x": "11.4.0"}
"""A version of each column: the wheels whose surfaces the fakes were read from."""
UNNAMED = "unnamed"
"""An extra layer added without registerLayer: TensorRT's default name, matched by no pin."""


@dataclass(frozen=True)
class OpImport:
    """One importer in one release.

    `reads`: the attributes it reads. `named`: its main layer gets the node's name.
    `broadcasts`: a lower-rank input first goes through an unnamed shuffle (broadcastTensors).
    `after`: extra layers after the main one, each UNNAMED or "node" (registered under the
    node's name again, so `name_N`); the last layer produces the node's named output.
    `after_when`: attributes whose presence adds the `after` layers (empty: always added).
    """

    reads: frozenset[str] = frozenset()
    named: bool = True
    broadcasts: bool = False
    after: tuple[str, ...] = ()
    after_when: frozenset[str] = frozenset()


def _op(reads: Iterable[str] = (), **kwargs: Any) -> OpImport:
    return OpImport(reads=frozenset(reads), **kwargs)


KERNEL = ("auto_pad", "dilations", "kernel_shape", "pads", "strides")
"""getKernelParams (8.6 and 10.x): what Conv and the pools share."""
REDUCE = ("axes", "keepdims")
ELEMENTWISE = _op(broadcasts=True)  # elementwiseHelper: registerLayer + broadcastTensors
UNARY = _op()  # unaryHelper / activationHelper: registerLayer

_SAME = {
    "Add": ELEMENTWISE, "Sub": ELEMENTWISE, "Mul": ELEMENTWISE, "Div": ELEMENTWISE,
    "Pow": ELEMENTWISE, "Equal": ELEMENTWISE, "Greater": ELEMENTWISE, "Less": ELEMENTWISE,
    "And": ELEMENTWISE, "Or": ELEMENTWISE,
    "Sqrt": UNARY, "Relu": UNARY, "Sigmoid": UNARY, "Erf": UNARY, "Neg": UNARY, "Abs": UNARY,
    "Exp": UNARY, "Not": UNARY, "Reciprocal": UNARY, "Tanh": UNARY,
    "Clip": _op(("min", "max")),  # activationHelper (kCLIP), min/max as inputs from opset 11
    "Cast": _op(("to",)),
    "Concat": _op(("axis",)),
    "Conv": _op(("group", *KERNEL)),
    "AveragePool": _op(("ceil_mode", "count_include_pad", *KERNEL)),
    "MaxPool": _op(("ceil_mode", "storage_order", *KERNEL)),
    "Gemm": _op(("alpha", "beta", "transA", "transB"), broadcasts=True),
    "MatMul": _op(broadcasts=True),
    "Where": _op(broadcasts=True),
    "Reshape": _op(("allowzero", "shape")),
    "Transpose": _op(("perm",)),
    "Slice": _op(("axes", "ends", "starts")),
    "Squeeze": _op(("axes",)),
    "Unsqueeze": _op(("axes",)),
    "Flatten": _op(("axis",)),
    "Gather": _op(("axis",)),
    "Identity": _op(),
    "Expand": _op(),
    "Softmax": _op(("axis",), after=(UNNAMED,)),  # addSoftmax, then a reshape back (addShuffle)
    "Constant": _op(("value", "value_float", "value_floats", "value_int", "value_ints")),
}  # fmt: skip
"""Rows equal in every release."""

_RESIZE = ("coordinate_transformation_mode", "cubic_coeff_a", "exclude_outside", "mode",
           "nearest_mode")  # fmt: skip
_LAYER_NORM = ("axis", "epsilon", "stash_type")
_QDQ = ("QuantizeLinear", "DequantizeLinear")
_REDUCTIONS = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2",
               "ReduceSumSquare")  # fmt: skip

_86 = {
    # Shape: addShape(input) + registerLayer; `start`/`end` (opset 15) are never read.
    "Shape": _op(),
    # LayerNormalization: addNormalization after broadcasting scale and bias; no registerLayer.
    "LayerNormalization": _op(_LAYER_NORM, named=False, broadcasts=True),
    "Resize": _op(_RESIZE),
    **{op: _op(REDUCE) for op in _REDUCTIONS},  # reduceTensor
    # QuantDequantLinearHelper: the layer gets the node's name by setName (no `_N`).
    **{op: _op(("axis",)) for op in _QDQ},
}
_10 = {
    # Shape: addShape (named), then an unnamed Cast to INT64 and, for start/end, an unnamed Slice.
    "Shape": _op(
        ("start", "end"), after=(UNNAMED, UNNAMED), after_when=frozenset({"start", "end"})
    ),
    # LayerNormalization: registerLayer added on 10.0-GA/10.1-GA ("Register LayerNorm nodes").
    "LayerNormalization": _op(_LAYER_NORM, broadcasts=True),
    "Resize": _op((*_RESIZE, "axes")),
    **{op: _op((*REDUCE, "noop_with_empty_axes")) for op in _REDUCTIONS},
    **{op: _op(("axis", "output_dtype")) for op in _QDQ},
}
CONTRACT: dict[str, dict[str, OpImport]] = {
    release: {**_SAME, **(_86 if release == "8.6" else _10)} for release in RELEASES
}
"""op type -> OpImport, per release (RELEASES)."""


def release_of(version: str) -> str:
    """The table column for TensorRT `version`: '8.6.2' -> '8.6', '10.3.0' -> '10.3',
    '10.16.1' -> '10.x', '11.4' -> '11.x'."""
    numbers = [int(n) for n in re.findall(r"\d+", version)[:2]] + [0, 0]
    major, minor = numbers[0], numbers[1]
    if major <= 8:
        return "8.6"
    if major == 10 and minor <= 3:
        return "10.3"
    return "10.x" if major < 11 else "11.x"


def ignored_attributes(
    op_type: str, attributes: Mapping[str, Any], release: str, defaults: Mapping[str, Any]
) -> list[str]:
    """The attributes of one node that `release`'s importer ignores though they are set to a
    value other than the ONNX default (`defaults`: name -> default value, absent if none).
    An op without a row ignores nothing here (the op list itself is checked elsewhere)."""
    row = CONTRACT[release].get(op_type)
    if row is None:
        return []
    return sorted(
        name
        for name, value in attributes.items()
        if name not in row.reads and (name not in defaults or defaults[name] != value)
    )
