"""Issue 4: the fused ONNX graph, its metadata, --half, the CLI and the TensorRT fallback.

One real export per module (random-init mvtec-224 geometry, one encoder and one decoder layer);
CLI and error tests reuse that traced graph instead of tracing again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from cli_helpers import run_main
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from uniad_edge.artifacts import read_sidecar
from uniad_edge.cli.app import app
from uniad_edge.errors import UniadError
from uniad_edge.export import (
    check_half_drift,
    export_onnx,
    fold_constants,
    head_float_types,
    head_nodes,
    pipeline,
    sample_frames,
    to_mixed_precision,
)
from uniad_edge.export.checks import (
    constant_arrays,
    folded_constant_problems,
    graph_problems,
    opset_of,
    tensorrt_problems,
    uint8_problems,
)
from uniad_edge.export.verify import check_parity
from uniad_edge.fileio import sha256_file
from uniad_edge.metadata import METADATA_KEY, ModelMetadata
from uniad_edge.model import FusedUniAD, build_model, load_checkpoint, save_checkpoint
from uniad_edge.parity import HALF_LIMITS, Limits
from uniad_edge.presets import PRESETS
from uniad_edge.trt import detect

PRESET = PRESETS["mvtec-224"].replace(name="test-224", num_encoder_layers=1, num_decoder_layers=1)
THRESHOLDS = {"global": 2.5, "per_class": {"wood": 2.0, "pill": 3.0}, "rule": "test"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(checkpoint path, ExportResult) for one real export, verified at batch 1 and 4."""
    root = tmp_path_factory.mktemp("export")
    model = build_model(PRESET, pretrained=False).eval()
    ckpt = save_checkpoint(
        root / "tiny.pth", model, {"class_names": ["wood", "pill"], "thresholds": THRESHOLDS}
    )
    result = export_onnx(ckpt, root / "out", verify_batches=(1, 4))
    return ckpt, result


@pytest.fixture(scope="module")
def graph(exported) -> onnx.ModelProto:
    return onnx.load(str(exported[1].onnx_path))


@pytest.fixture
def cached_trace(graph, monkeypatch):
    """Make the pipeline reuse the module's traced graph (the CLI is under test, not tracing)."""

    def trace(fused, batch, opset):
        copy = onnx.ModelProto()
        copy.CopyFrom(graph)
        return copy

    monkeypatch.setattr(pipeline, "trace_to_onnx", trace)


def test_parity_is_recorded_at_batch_1_and_4_and_a_perturbed_graph_fails_it(exported, graph):
    """The export's own comparison passes the real graph and rejects one wrong weight."""
    ckpt, result = exported
    assert [p.batch for p in result.parity] == [1, 4]
    fused = FusedUniAD(load_checkpoint(ckpt).model).eval()
    frames = sample_frames(PRESET, 2)
    check_parity(fused, graph.SerializeToString(), frames, (2,))
    perturbed = onnx.ModelProto()
    perturbed.CopyFrom(graph)
    (weight,) = [t for t in perturbed.graph.initializer if t.name.endswith("output_proj.weight")]
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.01, weight.name))
    with pytest.raises(UniadError, match="disagrees with PyTorch at batch 2: map relative L2"):
        check_parity(fused, perturbed.SerializeToString(), frames, (2,))


def test_graph_io_is_uint8_frames_in_float_map_and_score_out(exported) -> None:
    session = ort.InferenceSession(str(exported[1].onnx_path), providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert (image.name, image.type, image.shape) == (
        "image",
        "tensor(uint8)",
        ["batch", 224, 224, 3],
    )
    outputs = [(o.name, o.type, o.shape) for o in session.get_outputs()]
    assert outputs == [
        ("anomaly_map", "tensor(float)", ["batch", 224, 224]),
        ("score", "tensor(float)", ["batch"]),
    ]
    frames = sample_frames(PRESET, 2)
    anomaly_map, score = session.run(None, {"image": frames})
    assert anomaly_map.shape == (2, 224, 224) and score.shape == (2,)


def test_graph_is_clean_for_tensorrt(graph) -> None:
    ops = [n.op_type for n in graph.graph.node]
    assert ops.count("LayerNormalization") == 6  # 2 encoder + 3 decoder + final decoder norm
    for banned in ("BatchNormalization", "Loop", "ScatterND", "If"):
        assert banned not in ops
    constants = [numpy_helper.to_array(t) for t in graph.graph.initializer]
    constants += [
        numpy_helper.to_array(a.t)
        for n in graph.graph.node
        if n.op_type == "Constant"
        for a in n.attribute
        if a.name == "value"
    ]
    assert not any(np.isneginf(c).any() for c in constants if c.dtype.kind == "f")
    onnx.checker.check_model(graph, full_check=True)


def test_neighbour_mask_is_a_where_against_the_lowest_finite_float(graph) -> None:
    """Bug 3: masked logits are replaced (not offset) by float32's lowest, float16's in --half."""
    for model, dtype in ((graph, np.float32), (to_mixed_precision(graph), np.float16)):
        consts = dict(constant_arrays(model))
        wheres = [n for n in model.graph.node if n.op_type == "Where"]
        assert len(wheres) == 3  # encoder self, decoder self and cross attention
        for node in wheres:
            mask, fill = consts[node.input[0]], consts[node.input[1]]
            assert mask.dtype == np.bool_ and mask.shape == (196, 196)
            assert fill.dtype == dtype and fill == np.finfo(dtype).min
        assert not graph_problems(model)


def test_half_layernorm_is_float16_with_float32_statistics_as_documented(graph) -> None:
    """Bug 9: the --half LayerNorm reads, weighs and writes float16; only statistics are float32."""
    half = onnx.shape_inference.infer_shapes(to_mixed_precision(graph))
    types = {v.name: v.type.tensor_type.elem_type for v in half.graph.value_info}
    types.update({t.name: t.data_type for t in half.graph.initializer})
    norms = [n for n in half.graph.node if n.op_type == "LayerNormalization"]
    assert len(norms) == 6
    for node in norms:
        assert {types[name] for name in [*node.input, node.output[0]]} == {onnx.TensorProto.FLOAT16}
        (stash,) = [a.i for a in node.attribute if a.name == "stash_type"]
        assert stash == onnx.TensorProto.FLOAT
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    claim = readme[readme.index("**`--precision fp16`**") :][:400]
    assert "LayerNorm inputs, weights and outputs float16" in claim
    assert "statistics in float32" in claim


def test_node_count_in_the_exporter_docstring_matches_the_graph(graph) -> None:
    """Bug 9: export/graph.py quotes node counts; the one-layer figure is checked here."""
    from uniad_edge.export import graph as graph_module

    doc = " ".join((graph_module.__doc__ or "").split())
    quoted = int(re.search(r"~(\d+) with one encoder and one decoder layer", doc).group(1))
    assert abs(quoted - len(graph.graph.node)) <= 0.05 * len(graph.graph.node)


HEAD_PREFIX = "/distance_head/"


def test_distance_head_nodes_carry_the_prefix_tensorrt_matches(graph) -> None:
    head = head_nodes(graph)
    ops = {n.op_type for n in head}
    assert {"Sub", "ReduceSum", "Sqrt", "Resize", "AveragePool", "ReduceMax"} <= ops
    assert all(n.name.startswith(HEAD_PREFIX) for n in head)
    outside = [n for n in graph.graph.node if n not in head]
    assert not any(n.name.startswith(HEAD_PREFIX) for n in outside)
    assert not {"Sqrt", "ReduceMax"} & {n.op_type for n in outside}


def test_metadata_round_trip_and_sidecar(exported) -> None:
    ckpt, result = exported
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    embedded = ModelMetadata.from_json(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
    assert embedded.to_dict() == result.metadata.to_dict()
    assert read_sidecar(result.onnx_path).to_dict() == embedded.to_dict()
    assert embedded.name == "tiny" and embedded.preset == "test-224"
    assert embedded.class_names == ["wood", "pill"]
    assert embedded.thresholds.to_dict() == {**THRESHOLDS, "provenance": {}, "history": []}
    assert embedded.checkpoint_sha256 == sha256_file(ckpt)
    assert (embedded.precision, embedded.batch, embedded.opset) == ("fp32", None, 17)
    assert embedded.backbone_pretrained is False
    assert {"uniad-edge", "torch", "onnx", "onnxruntime"} <= set(embedded.versions)
    assert embedded.preset_config["num_encoder_layers"] == 1
    sidecar = json.loads(result.sidecar_path.read_text())
    assert [p["batch"] for p in sidecar["verification"]["parity"]] == [1, 4]


def test_half_keeps_distance_head_float32_and_drifts_little(graph, exported) -> None:
    half = to_mixed_precision(graph)
    types = head_float_types(half)
    assert types and set(types.values()) == {onnx.TensorProto.FLOAT}
    weights = {t.data_type for t in half.graph.initializer if t.dims and len(t.dims) == 4}
    assert weights == {onnx.TensorProto.FLOAT16}  # conv weights went float16
    onnx.checker.check_model(half, full_check=True)
    frames = sample_frames(PRESET, 2)
    drift = check_half_drift(graph.SerializeToString(), half.SerializeToString(), frames)
    assert drift.finite and drift.map_rel_l2 > 0 and not drift.failures(HALF_LIMITS)


def test_cli_half_writes_fp16_model_that_info_reads(cached_trace, exported, tmp_path) -> None:
    out = tmp_path / "o"
    # --no-verify: the drift check is tested on the graph above; this checks the CLI wiring.
    code = run_main("export", "--ckpt", exported[0], "--out", out, "--half", "--format", "onnx",
                    "--name", "m16", "--no-verify")  # fmt: skip
    assert code == 0
    result = CliRunner().invoke(app, ["info", str(out / "m16.onnx"), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["precision"] == "fp16" and info["batch"] is None
    assert info["inputs"]["image"][0] == "tensor(uint8)"
    assert info["outputs"]["anomaly_map"][0] == "tensor(float)"
    assert sorted(p.name for p in out.iterdir()) == ["m16.json", "m16.onnx"]


@pytest.mark.skipif(detect().usable, reason="TensorRT and a GPU are usable here")
def test_format_engine_without_tensorrt_fails_but_keeps_onnx(
    cached_trace, exported, tmp_path, capsys
) -> None:
    out = tmp_path / "o"
    code = run_main("export", "--ckpt", exported[0], "--out", out, "--format", "trt",
                    "--no-verify")  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "TensorRT is not installed" in err and "trtexec --onnx=" in err
    assert (out / "tiny.onnx").is_file() and (out / "tiny.json").is_file()


@pytest.mark.skipif(detect().usable, reason="TensorRT and a GPU are usable here")
def test_format_auto_without_tensorrt_prints_trtexec_and_succeeds(
    cached_trace, exported, tmp_path, capsys
) -> None:
    code = run_main("export", "--ckpt", exported[0], "--out", tmp_path, "--no-verify")
    assert code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "no engine:" in out and "trtexec --onnx=" in out and "uniad-edge[tensorrt]" in out


def test_bad_format_is_a_one_line_error(exported, tmp_path, capsys) -> None:
    assert run_main("export", "--ckpt", exported[0], "--format", "tflite") == 2
    assert "--format 'tflite'" in capsys.readouterr().err


def test_interrupt_while_writing_leaves_nothing(cached_trace, exported, tmp_path, monkeypatch):
    """Ctrl-C while the sidecar is written, when the whole temporary .onnx is already on disk."""
    out = tmp_path / "o"
    on_disk: list[tuple[str, int]] = []
    write_text = Path.write_text

    def interrupted(self: Path, *args, **kwargs):
        if self.parent == out and self.name.startswith(".tiny.json."):
            on_disk.extend((p.name, p.stat().st_size) for p in out.iterdir())
            raise KeyboardInterrupt
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", interrupted)
    with pytest.raises(UniadError, match="interrupted"):
        export_onnx(exported[0], out, verify=False)
    assert any(name.startswith(".tiny.onnx.") and size > 1e6 for name, size in on_disk), on_disk
    assert list(out.iterdir()) == []


def test_failed_parity_leaves_nothing(cached_trace, exported, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("uniad_edge.export.verify.EXPORT_LIMITS", Limits(-1.0, -1.0, -1.0))
    out = tmp_path / "o"
    with pytest.raises(UniadError, match="disagrees with PyTorch"):
        export_onnx(exported[0], out, verify_batches=(1,))
    assert list(out.iterdir()) == []


def test_cli_prints_bracketed_paths_verbatim(
    cached_trace, exported, tmp_path, capsys, monkeypatch
) -> None:
    """Bug 5: `[/x]` and `[red]` in --out reach the summary as typed (no MarkupError)."""
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping inside the table cell
    out = tmp_path / "odd[" / "x]" / "[red]"
    code = run_main("export", "--ckpt", exported[0], "--out", out, "--format", "onnx",
                    "--no-verify")  # fmt: skip
    assert code == 0
    printed = "".join(capsys.readouterr().out.split())
    assert "".join(str(out / "tiny.json").split()) in printed


def test_export_onto_a_full_disk_is_one_line_and_leaves_nothing(
    cached_trace, exported, tmp_path, capsys
) -> None:
    """Bug 6: the kernel refuses the write (a file-size limit: EFBIG, as ENOSPC on a full disk)."""
    import resource
    import signal

    out = tmp_path / "o"
    out.mkdir()
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, not the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, limits[1]))
    try:
        code = run_main("export", "--ckpt", exported[0], "--out", out, "--format", "onnx",
                        "--no-verify")  # fmt: skip
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "tiny.onnx" in err and "File too large" in err
    assert list(out.iterdir()) == []


@pytest.fixture(scope="module")
def half_graph(graph) -> onnx.ModelProto:
    return to_mixed_precision(graph)


@pytest.mark.parametrize("which", ["graph", "half_graph"])
def test_graph_obeys_the_tensorrt_parser_rules(which, request) -> None:
    """uint8 only into Cast, opset 17 (TensorRT 8.6), parser ops only, weights folded."""
    model = request.getfixturevalue(which)
    assert tensorrt_problems(model) == []
    consumers = [n.op_type for n in model.graph.node if "image" in n.input]
    assert consumers and set(consumers) == {"Cast"}
    assert opset_of(model) == 17


def test_reductions_carry_axes_as_the_attribute_tensorrt_86_reads(graph) -> None:
    """TensorRT 8.6's ReduceMean/ReduceMax importers ignore an axes *input* (opset 18 form)."""
    reductions = [n for n in graph.graph.node if n.op_type in ("ReduceMean", "ReduceMax")]
    assert len(reductions) >= 2
    for node in reductions:
        assert len(node.input) == 1, node.name
        assert "axes" in {a.name for a in node.attribute}, node.name
        assert "noop_with_empty_axes" not in {a.name for a in node.attribute}


def test_contract_catches_uint8_transpose_and_old_opset() -> None:
    """The pre-fix preprocessing (Transpose of the uint8 frame, then Cast) at opset 18."""
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Cast", ["nchw"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["x"], ["score"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "old",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 4, 4, 3])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    problems = tensorrt_problems(model)
    assert any("uint8 tensor image feeds Transpose" in p for p in problems)
    assert any("opset 18 is newer than the 17" in p for p in problems)
    assert tensorrt_problems(model, max_opset=18) == uint8_problems(model)


def test_folding_removes_constant_weight_slices_and_keeps_metadata(exported) -> None:
    """The packed attention weights' Slice/Transpose fold into initializers, metadata stays."""
    weight = np.arange(24, dtype=np.float32).reshape(6, 4)
    nodes = [
        helper.make_node("Slice", ["w", "starts", "ends", "axes"], ["w_q"]),
        helper.make_node("Transpose", ["w_q"], ["w_qt"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "w_qt"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "packed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
        [
            numpy_helper.from_array(weight, "w"),
            numpy_helper.from_array(np.array([0], np.int64), "starts"),
            numpy_helper.from_array(np.array([2], np.int64), "ends"),
            numpy_helper.from_array(np.array([0], np.int64), "axes"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {METADATA_KEY: "{}"})
    assert len(folded_constant_problems(model)) == 2
    folded = fold_constants(model)
    assert folded_constant_problems(folded) == [] and len(folded.graph.node) == 1
    assert {p.key: p.value for p in folded.metadata_props} == {METADATA_KEY: "{}"}
    x = np.ones((2, 4), np.float32)
    before, after = (ort.InferenceSession(m.SerializeToString()) for m in (model, folded))
    np.testing.assert_array_equal(before.run(None, {"x": x})[0], after.run(None, {"x": x})[0])
    result = exported[1]
    assert result.traced_nodes > result.nodes  # the real export folded nodes away
