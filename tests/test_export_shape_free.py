"""Every exported variant is free of shape arithmetic (issue 26): no Shape, ConstantOfShape,
Expand, Tile, Range or NonZero node, and every Resize takes constant scales or sizes.

TensorRT 8.6's Shape importer ignores `start`/`end`, so the old dynamic-batch graph (Shape ->
Concat -> Resize sizes / Expand) fails to parse or build on JetPack 6.0. The walk here is written
independently of `export/checks.py`, and the export's own contract must agree with it.

Random-init models with one encoder and one decoder layer (the transformer's ops are the same
for every depth), exported without verification (tracing is what makes the graph): each real
preset's geometry once with a dynamic batch (the variant that had the Shape nodes), and the
other variants (`--batch N`, `--precision fp16`, `--frame-size` with and without `--roi`) on a
64 px lite0 model, whose backbone traces fastest.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from model_helpers import TINY
from onnx import numpy_helper

from uniad_edge.export import export_onnx
from uniad_edge.export.checks import graph_problems
from uniad_edge.model import build_model, save_checkpoint
from uniad_edge.model.resize import exact_scale
from uniad_edge.presets import PRESETS
from uniad_edge.trt.parser_contract import CONTRACT

SHAPE_OPS = {"Shape", "ConstantOfShape", "Expand", "Tile", "Range", "NonZero"}
PRESET_NAMES = ("mvtec-224", "mvtec-512", "cifar10", "lite0-224", "lite0-512")
SMALL = ("input_size", "num_encoder_layers", "num_decoder_layers", "hidden_dim", "nhead",
         "dim_feedforward", "neighbor_size")  # fmt: skip
TINY_LITE = PRESETS["lite0-224"].replace(
    name="tiny-lite-64", **{f: getattr(TINY, f) for f in SMALL}
)


def _walk(model: onnx.ModelProto) -> list[str]:
    """Offending nodes: shape ops, and Resizes without constant scales or sizes."""
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    bad = [f"{n.op_type} {n.name}" for n in model.graph.node if n.op_type in SHAPE_OPS]
    for node in (n for n in model.graph.node if n.op_type == "Resize"):
        inputs = list(node.input) + [""] * 4
        scales, sizes = inputs[2], inputs[3]
        given = scales or sizes
        if not given or given not in constants or constants[given].size != 4:
            bad.append(f"Resize {node.name} without constant 4-element scales or sizes")
    return bad


def _checkpoint(tmp_path_factory: pytest.TempPathFactory, preset):
    path = tmp_path_factory.mktemp(preset.name) / "model.pth"
    return save_checkpoint(path, build_model(preset, pretrained=False).eval())


def _assert_shape_free(path) -> onnx.ModelProto:
    model = onnx.load(str(path))
    assert _walk(model) == []
    assert graph_problems(model) == []
    missing = {n.op_type for n in model.graph.node} - set(CONTRACT["8.6"])
    assert not missing, f"ops without a parser contract row: {missing}"
    resizes = [n for n in model.graph.node if n.op_type == "Resize"]
    assert resizes, "the neck and the head resize: a graph without Resize is not UniAD's"
    return model


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_preset_dynamic_batch_is_shape_free(tmp_path_factory, name: str) -> None:
    preset = PRESETS[name].replace(num_encoder_layers=1, num_decoder_layers=1)
    ckpt = _checkpoint(tmp_path_factory, preset)
    out = tmp_path_factory.mktemp(f"{name}-export")
    result = export_onnx(ckpt, out, "model", verify=False)
    model = _assert_shape_free(result.onnx_path)
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "batch"


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return _checkpoint(tmp_path_factory, TINY_LITE)


@pytest.mark.parametrize(
    "options",
    [
        {"precision": "fp16", "verify_batches": (2,), "frame_size": (320, 240)},
        {"frame_size": (320, 240), "roi": (40, 10, 250, 200)},
        {"frame_size": (1280, 720), "batch": 3, "precision": "fp16", "verify_batches": (3,)},
    ],
    ids=["fp16-frame-size", "frame-size-roi", "frame-size-batch-fp16"],
)
def test_every_variant_is_shape_free(tmp_path, tiny_ckpt, options) -> None:
    result = export_onnx(tiny_ckpt, tmp_path, "model", verify=False, **options)
    model = _assert_shape_free(result.onnx_path)
    if "frame_size" in options:
        width, height = options["frame_size"]
        dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:3]]
        assert dims == [height, width]


def test_the_old_pattern_is_what_the_walk_refuses() -> None:
    """The walk can fail: yesterday's Shape(start, end) -> Concat -> Resize sizes is caught."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Shape", ["x"], ["nc"], start=0, end=2),
        helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear"),
    ]
    graph = helper.make_graph(
        nodes,
        "old",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor("hw", TensorProto.INT64, [2], [8, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert len(_walk(model)) == 2
    assert any("shape arithmetic: Shape" in p for p in graph_problems(model))


@pytest.mark.parametrize(
    ("source", "target"),
    [(320, 224), (240, 224), (720, 224), (1280, 224), (7, 14), (56, 14), (14, 224), (333, 17)],
)
def test_exact_scale_gives_the_size_in_float32_and_float64(source: int, target: int) -> None:
    scale = exact_scale(source, target)
    assert float(np.float32(scale)) == scale
    assert int(np.floor(np.float32(scale) * np.float32(source))) == target
    assert int(np.floor(scale * source)) == target
