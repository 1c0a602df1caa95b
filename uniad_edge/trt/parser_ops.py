"""The ONNX ops TensorRT's ONNX parser imports, and the newest opset each TensorRT parses.

Facts from onnx/onnx-tensorrt: the op names are the `DEFINE_BUILTIN_OP_IMPORTER` entries of
`builtin_op_importers.cpp` on branch 8.6-GA (commit ee0b139b), the oldest parser uniad-edge
supports (later parsers add ops, none removed); the opsets come from `docs/operators.md` of each
release branch (8.6-GA: "up to Opset 17"; 10.0-GA: "opset 9 to opset 20"; 10.15: "opset 9 to
opset 24") and NVIDIA's ONNX opset guide for 11.x (11.2's operators.md says 24: the lower is kept).
"""

from __future__ import annotations

import re

PARSER_OPS_86 = frozenset(
    {
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
    "AveragePool", "BatchNormalization", "Cast", "Ceil", "Celu", "Clip", "Concat", "Constant",
    "ConstantOfShape", "Conv", "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace",
    "DequantizeLinear", "Div", "Dropout", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand",
    "EyeLike", "Flatten", "Floor", "GRU", "Gather", "GatherElements",
    "GatherND", "Gemm", "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "Greater",
    "GreaterOrEqual", "GridSample", "GroupNormalization", "HardSigmoid", "HardSwish", "Identity",
    "If", "ImageScaler", "InstanceNormalization", "IsInf", "IsNaN", "LRN", "LSTM",
    "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop",
    "LpNormalization", "LpPool", "MatMul", "Max", "MaxPool", "Mean", "MeanVarianceNormalization",
    "Min", "Mod", "Mul", "Neg", "NonMaxSuppression", "NonZero", "Not", "OneHot", "Or", "PRelu",
    "Pad", "ParametricSoftplus", "Pow", "QuantizeLinear", "RNN", "RandomNormal",
    "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Range", "Reciprocal", "ReduceL1",
    "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
    "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Reshape", "Resize", "ReverseSequence",
    "RoiAlign", "Round", "ScaledTanh", "Scan", "Scatter", "ScatterElements", "ScatterND", "Selu",
    "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice", "Softmax", "Softplus",
    "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "TRT_AveragePool",
    "TRT_Conv", "TRT_Deconv", "TRT_FP8DequantizeLinear", "TRT_FP8QuantizeLinear", "TRT_FloorDiv",
    "TRT_FullyConnected", "TRT_Gather", "TRT_MatMul", "TRT_MaxAverageBlendPool", "TRT_MaxPool",
    "TRT_PluginV2", "TRT_RNNv2", "TRT_RaggedSoftmax", "TRT_Resize", "TRT_Scale", "TRT_Shuffle",
    "TRT_Slice", "TRT_TopK_Min", "Tan", "Tanh", "ThresholdedRelu", "Tile", "TopK", "Transpose",
    "Trilu", "Unsqueeze", "Upsample", "Where", "Xor",
    }
)  # fmt: skip

MAX_OPSET = ((8, 17), (10, 20), (11, 24))
"""(major, newest opset) per TensorRT major version; 10.15+ parses 24 (see `max_opset`)."""


def max_opset(version: str) -> int:
    """Newest ONNX opset the parser of TensorRT `version` ('8.6.2', '10.3.0') parses."""
    numbers = [int(n) for n in re.findall(r"\d+", version)[:2]] + [0, 0]
    major, minor = numbers[0], numbers[1]
    if major == 10 and minor >= 15:
        return 24
    known = [opset for m, opset in MAX_OPSET if m <= major]
    return known[-1] if known else 17
