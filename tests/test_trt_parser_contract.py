"""The parser contract (issue 26): what each TensorRT release's ONNX importer reads and how it
names layers (uniad_edge/trt/parser_contract.py), followed by the export check, the fake
parsers and the FP32 pins.

Yesterday's dynamic-batch graph computed Resize sizes and an Expand target from `Shape` nodes
with `start`/`end`, which TensorRT 8.6's importer ignores: the 8.6 fake must refuse it (as the
real parse or build fails), the export check must refuse it in one line, and 10.x must take it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx_fixtures import fixture_metadata
from trt_fakes import fake_tensorrt

from uniad_edge.errors import UniadError
from uniad_edge.export.checks import check_graph, parser_contract_problems
from uniad_edge.metadata import INPUT_NAME, METADATA_KEY, OUTPUT_MAP, OUTPUT_SCORE
from uniad_edge.trt import builder, features
from uniad_edge.trt.onnx_info import read_onnx_info
from uniad_edge.trt.parser_contract import CONTRACT, RELEASES, SOURCES, release_of

FLOAT = TensorProto.FLOAT


def _yesterdays_graph(opset: int = 17) -> onnx.ModelProto:
    """The old pattern: Shape(start=0, end=2) -> Concat -> Resize sizes, and
    Shape(end=1) -> Concat -> Expand of a [1, 4, 8] embedding to the batch."""
    nodes = [
        helper.make_node("Shape", ["x"], ["nc"], name="node_Shape_878", start=0, end=2),
        helper.make_node("Concat", ["nc", "hw"], ["sizes"], name="node_Concat_879", axis=0),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="node_Resize_880",
                         mode="linear", coordinate_transformation_mode="align_corners"),
        helper.make_node("Shape", ["x"], ["b"], name="node_Shape_0", end=1),
        helper.make_node("Concat", ["b", "tail"], ["target"], name="node_Concat_1", axis=0),
        helper.make_node("Expand", ["embed", "target"], ["z"], name="node_expand_2"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "yesterday",
        [helper.make_tensor_value_info("x", FLOAT, ["batch", 4, 4, 4])],
        [
            helper.make_tensor_value_info("y", FLOAT, ["batch", 4, 8, 8]),
            helper.make_tensor_value_info("z", FLOAT, ["batch", 4, 8]),
        ],
        [
            helper.make_tensor("hw", TensorProto.INT64, [2], [8, 8]),
            helper.make_tensor("tail", TensorProto.INT64, [2], [4, 8]),
            helper.make_tensor("embed", FLOAT, [1, 4, 8], np.zeros(32, np.float32)),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _parse(release: str, model: onnx.ModelProto) -> tuple[bool, list[str], object]:
    trt = fake_tensorrt(release)
    logger = trt.Logger(trt.Logger.WARNING)
    network = trt.Builder(logger).create_network(features.network_flags(trt, False))
    parser = trt.OnnxParser(network, logger)
    ok = parser.parse(model.SerializeToString())
    return ok, [parser.get_error(i) for i in range(parser.num_errors)], network


def test_the_86_fake_refuses_yesterdays_graph_and_10x_takes_it() -> None:
    ok, errors, _ = _parse("8.6", _yesterdays_graph())
    assert not ok and len(errors) == 1
    assert "node_Resize_880" in errors[0] and "has 6 elements, the graph expects 4" in errors[0]
    for release in ("10.3", "10.16", "11.4"):
        ok, errors, _ = _parse(release, _yesterdays_graph())
        assert ok and not errors, release


def test_the_export_refuses_yesterdays_graph_in_one_line() -> None:
    problems = parser_contract_problems(_yesterdays_graph())
    assert len(problems) == 2 and all("TensorRT 8.6's parser ignores" in p for p in problems)
    assert "node_Shape_878 sets end" in problems[0] and "node_Shape_0 sets end" in problems[1]
    with pytest.raises(UniadError) as caught:
        check_graph(_yesterdays_graph())
    message = str(caught.value)
    assert "\n" not in message and "8.6-GA builtin_op_importers.cpp" in message
    # Opset 18 is parsed by TensorRT 10 and newer only, which read start/end.
    assert parser_contract_problems(_yesterdays_graph(opset=18)) == []


def test_default_valued_attributes_are_not_reliance() -> None:
    """The exporter writes defaults the importer does not read (Resize antialias=0 at opset
    18); only a value other than the ONNX default changes the graph's meaning."""
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], antialias=0, mode="linear")
    model = helper.make_model(
        helper.make_graph([node], "g", [], []), opset_imports=[helper.make_opsetid("", 18)]
    )
    assert parser_contract_problems(model) == []
    model.graph.node[0].attribute[0].i = 1
    assert "sets antialias" in parser_contract_problems(model)[0]


def test_every_release_has_a_row_per_op_and_a_cited_source() -> None:
    ops = set(CONTRACT["8.6"])
    assert all(set(CONTRACT[r]) == ops for r in RELEASES)
    assert set(SOURCES) == set(RELEASES)
    assert "start" not in CONTRACT["8.6"]["Shape"].reads
    assert {"start", "end"} <= CONTRACT["10.3"]["Shape"].reads
    assert not CONTRACT["8.6"]["LayerNormalization"].named
    assert CONTRACT["8.6"]["QuantizeLinear"].reads == {"axis"}  # int8's Q/DQ graph
    assert all(CONTRACT[r]["LayerNormalization"].named for r in RELEASES[1:])
    versions = {"8.6.1.6": "8.6", "10.3.0.26": "10.3", "10.16.1.11": "10.x", "11.4.0.106": "11.x"}
    assert {v: release_of(v) for v in versions} == versions


def _pinned_graph() -> onnx.ModelProto:
    """A head-like graph whose 8.6 import has unnamed layers (LayerNormalization, the reshape
    after Softmax, broadcast shuffles) and `_N` names (two nodes named alike)."""
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["x"], name="cast", to=FLOAT),
        helper.make_node("Add", ["x", "bias"], ["a"], name="/distance_head/Add_1"),
        helper.make_node("LayerNormalization", ["a", "gamma", "beta"], ["n"], name="ln_5",
                         axis=-1, epsilon=1e-5),
        helper.make_node("Softmax", ["n"], ["s"], name="/distance_head/Softmax_2", axis=-1),
        helper.make_node("Sqrt", ["s"], ["q"], name="/distance_head/Sqrt_3"),
        helper.make_node("Relu", ["q"], [OUTPUT_MAP], name="/distance_head/Sqrt_3"),
        helper.make_node("ReduceMax", [OUTPUT_MAP], [OUTPUT_SCORE], name="/distance_head/Max_4",
                         axes=[1, 2], keepdims=0),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "pinned",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", 8, 8, 3])],
        [
            helper.make_tensor_value_info(OUTPUT_MAP, FLOAT, ["batch", 8, 8, 3]),
            helper.make_tensor_value_info(OUTPUT_SCORE, FLOAT, ["batch", 3]),
        ],
        [
            helper.make_tensor("bias", FLOAT, [3], [0.0, 1.0, 2.0]),
            helper.make_tensor("gamma", FLOAT, [3], [1.0, 1.0, 1.0]),
            helper.make_tensor("beta", FLOAT, [3], [0.0, 0.0, 0.0]),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


PINS = [
    features.Pin("/distance_head/Add_1", "Add", ("a",)),
    features.Pin("ln_5", "LayerNormalization", ("n",)),
    features.Pin("/distance_head/Softmax_2", "Softmax", ("s",)),
    features.Pin("/distance_head/Sqrt_3", "Sqrt", ("q",)),
    features.Pin("/distance_head/Max_4", "ReduceMax", (OUTPUT_SCORE,)),
]


def test_86_fake_names_layers_as_the_importer_does() -> None:
    ok, errors, network = _parse("8.6", _pinned_graph())
    assert ok, errors
    names = [network.get_layer(i).name for i in range(network.num_layers)]
    assert names[1:4] == ["bias", "(Unnamed Layer* 2) [Shuffle]", "/distance_head/Add_1"]
    assert not any(n.startswith("ln_5") for n in names)  # LayerNormalization: no registerLayer
    assert "/distance_head/Softmax_2" in names  # the softmax layer; its reshape is unnamed
    assert "/distance_head/Sqrt_3" in names and "/distance_head/Sqrt_3_0" in names
    _, _, network = _parse("10.3", _pinned_graph())
    assert "ln_5" in [network.get_layer(i).name for i in range(network.num_layers)]


def test_86_fake_every_pin_lands_despite_unnamed_layers_and_suffixes() -> None:
    ok, errors, network = _parse("8.6", _pinned_graph())
    assert ok, errors
    trt = network._trt
    report = features.keep_fp32(trt, network, PINS)
    assert (report.requested, report.matched, report.missing) == (5, 5, ())
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    producers = {
        t.name: layer for layer in layers for t in map(layer.get_output, range(layer.num_outputs))
    }
    for name in ("a", "n", "s", "q", OUTPUT_MAP, OUTPUT_SCORE):
        assert producers[name].precision == trt.float32, name
    assert producers["x"].precision is None  # the Cast in front stays free
    # By name alone (yesterday's matching) the LayerNormalization and the reshape after the
    # Softmax, which produces the tensor the head reads, would have stayed FP16.
    assert producers["n"].name.startswith("(Unnamed Layer*")
    assert producers["s"].name.startswith("(Unnamed Layer*")


def _exported(tmp_path: Path, pins: dict | None) -> Path:
    model = _pinned_graph()
    data = fixture_metadata((8, 8)).to_dict()
    data["fp32_pins"] = pins
    helper.set_model_props(model, {METADATA_KEY: json.dumps(data)})
    path = tmp_path / "pinned.onnx"
    onnx.save(model, path)
    path.with_suffix(".json").write_text(json.dumps(data))
    return path


def _pins_metadata(pins: list[features.Pin]) -> dict:
    return {p.node: {"op": p.op, "outputs": list(p.outputs)} for p in pins}


def test_trtexec_lines_pin_the_head_without_the_onnx_package(tmp_path, monkeypatch) -> None:
    named = [p for p in PINS if p.op != "LayerNormalization"]
    path = _exported(tmp_path, _pins_metadata(named))
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    info = read_onnx_info(path)
    assert info.fp32_layers == tuple(p.node for p in named)
    line = builder.trtexec_lines(path, precision="fp16")["8.6"].replace("'", "")
    spec = ",".join(f"{p.node}:fp32" for p in named)
    assert f"--layerPrecisions={spec}" in line and f"--layerOutputTypes={spec}" in line


def test_no_86_trtexec_line_when_a_pin_has_no_layer_name(tmp_path) -> None:
    """8.6 leaves LayerNormalization unnamed: trtexec (names only) cannot pin it."""
    path = _exported(tmp_path, _pins_metadata(PINS))
    lines = builder.trtexec_lines(path, precision="fp16")
    assert lines["8.6"] is None and "ln_5:fp32" in lines["10.x"].replace("'", "")
