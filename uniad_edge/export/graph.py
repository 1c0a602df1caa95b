"""PyTorch FusedUniAD -> one ONNX graph, with the node names the TensorRT builder relies on.

The dynamo exporter (torch.export + onnxscript) is used, not the TorchScript one: its optimizer
folds BatchNorm into the convolutions and constant-folds shape arithmetic; with the weight
folding after it, an exported mvtec-224 has ~710 nodes (~450 with one encoder and one decoder
layer; checked by the export tests) where the TorchScript exporter leaves ~1400 (Constant, Pad,
If for squeeze).
"""

from __future__ import annotations

import ast
import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import onnx
import torch

from ..metadata import INPUT_NAME, OUTPUT_MAP, OUTPUT_SCORE
from ..model import FusedUniAD
from ..trt.features import DISTANCE_HEAD_PREFIX
from .fold import read_shape_after_cast
from .opset import NATIVE_OPSET, downgrade_to_17

BATCH_DIM = "batch"
MAX_DYNAMIC_BATCH = 1024
HEAD_SCOPE = "model.distance_head"
SCOPES_KEY = "pkg.torch.onnx.name_scopes"


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter warns about missing torchvision ops and its own deprecations; none of
    them concern UniAD, and they would bury the progress display."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def trace_to_onnx(fused: FusedUniAD, batch: int | None, opset: int) -> onnx.ModelProto:
    """Export `fused` (uint8 NHWC in) with a dynamic batch when `batch` is None, else static.

    Traced at opset 18 or newer (the exporter's native opsets) and lowered to 17 here when asked.
    """
    h, w = fused.frame_size or fused.model.preset.input_size
    # A batch-1 example would specialise the batch dimension to 1; 2 keeps it symbolic.
    example = torch.zeros((batch or 2, h, w, 3), dtype=torch.uint8)
    dynamic = None
    if batch is None:
        dim = torch.export.Dim(BATCH_DIM, min=1, max=MAX_DYNAMIC_BATCH)
        dynamic = {"images": {0: dim}}
    with torch.inference_mode(False), torch.no_grad(), _quiet_exporter():
        exported = torch.export.export(fused.eval(), (example,), dynamic_shapes=dynamic)
        program = torch.onnx.export(
            exported,
            dynamo=True,
            opset_version=max(opset, NATIVE_OPSET),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_MAP, OUTPUT_SCORE],
            optimize=True,
            verbose=False,
        )
    model = program.model_proto
    finalize_names(model)
    read_shape_after_cast(model)
    return downgrade_to_17(model) if opset < NATIVE_OPSET else model


def _scopes(node: onnx.NodeProto) -> list[str]:
    for prop in node.metadata_props:
        if prop.key == SCOPES_KEY:
            with contextlib.suppress(ValueError, SyntaxError):
                return list(ast.literal_eval(prop.value))
    return []


def finalize_names(model: onnx.ModelProto) -> int:
    """Prefix the distance head's nodes with `/distance_head/`, name the batch dimension and
    drop the exporter's per-node stack traces (they bloat the file). Returns the head size."""
    head = 0
    for index, node in enumerate(model.graph.node):
        if HEAD_SCOPE in _scopes(node):
            node.name = f"/{DISTANCE_HEAD_PREFIX}/{node.op_type}_{index}"
            head += 1
        del node.metadata_props[:]
    symbol = model.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        del value.metadata_props[:]
        for dim in value.type.tensor_type.shape.dim:
            if symbol and dim.dim_param == symbol:
                dim.dim_param = BATCH_DIM
    return head


def head_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Nodes of the float32 distance head, found by the name prefix the exporter gave them."""
    prefix = f"/{DISTANCE_HEAD_PREFIX}/"
    return [n for n in model.graph.node if n.name.startswith(prefix)]


def fp32_pins(model: onnx.ModelProto, extra: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """The metadata `fp32_pins` of `model`: its distance head, then the `extra` nodes, each
    with its op type and output tensors (what TensorRT names the tensors after)."""
    wanted = {n.name for n in head_nodes(model)} | set(extra)
    return {
        node.name: {"op": node.op_type, "outputs": [o for o in node.output if o]}
        for node in model.graph.node
        if node.name in wanted
    }
