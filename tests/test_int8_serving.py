"""Issue 29: an INT8 (Q/DQ) export loads like any other model in `run`, `serve` and Triton, and
gets TensorRT's INT8 flag wherever ONNX Runtime hands it to TensorRT.

One tiny checkpoint is exported with `--precision int8` (the gate opened: this file is about
loading, test_export_int8.py about accuracy); every path must score exactly what ONNX Runtime
scores on the same graph in-process, and never turn it into an unjudged or ERROR record.
"""

from __future__ import annotations

import cv2
import httpx
import numpy as np
import onnx
import pytest
from cli_helpers import run_main
from model_helpers import TINY, tiny_checkpoint
from onnx_fixtures import defect_frame, good_frame
from runtime_helpers import write_folder
from serve_helpers import png, running
from verdict_helpers import read_log

from uniad_edge.data.synth import generate
from uniad_edge.export import export
from uniad_edge.export.int8_gate import GateLimits
from uniad_edge.export.triton_repo import TritonOptions, config_text, export_triton
from uniad_edge.runtime.backends.ort_tensorrt_backend import tensorrt_ep_options
from uniad_edge.runtime.detector import Detector

OPEN_GATE = GateLimits(agreement=0.0, score_change=1e9, auroc_drop=1e9)


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory):
    """A dynamic-batch Q/DQ export of a tiny checkpoint with thresholds."""
    root = tmp_path_factory.mktemp("int8-serving")
    data = root / "data"
    generate(data, classes=1, train_per_class=8, test_per_class=4, size=64, seed=0)
    ckpt = tiny_checkpoint(root / "t.pth", {"global": 1.0, "per_class": {}, "rule": "t"})
    path = export(ckpt, format="onnx", out=root / "out", precision="int8", preset=TINY,
                  calib_data=data, int8_gate=OPEN_GATE).onnx.onnx_path  # fmt: skip
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("QuantizeLinear") > 0  # really the Q/DQ graph
    return path


def _frames() -> list[np.ndarray]:
    return [good_frame((48, 64), seed=1), defect_frame((48, 64), seed=2)]


def test_run_scores_the_int8_graph_as_the_detector_does(int8_model, tmp_path) -> None:
    folder = write_folder(tmp_path / "frames", good=2, bad=2)
    log = tmp_path / "v.jsonl"
    assert run_main("run", "--model", int8_model, "--source", folder, "--log", log) == 0
    records = read_log(log)
    assert len(records) == 4 and {r["verdict"] for r in records} <= {"OK", "NG"}
    with Detector(int8_model) as det:
        assert det.metadata.precision == "int8"
        for record in records:
            expected = det(cv2.imread(str(folder / record["name"]))).score
            assert record["score"] == pytest.approx(expected, rel=1e-5)


def test_serve_scores_the_int8_graph(int8_model) -> None:
    pytest.importorskip("fastapi")
    with Detector(int8_model) as det:
        expected = [det(frame).score for frame in _frames()]
    with running(int8_model) as server:
        model = httpx.get(f"{server.url}/v1/model", timeout=10).json()
        assert model["metadata"]["precision"] == "int8"
        for frame, score in zip(_frames(), expected, strict=True):
            reply = httpx.post(f"{server.url}/v1/score", content=png(frame),
                               headers={"content-type": "image/png"}, timeout=30)  # fmt: skip
            assert reply.status_code == 200 and reply.json()["verdict"] in ("OK", "NG")
            assert reply.json()["score"] == pytest.approx(score, rel=1e-5)


def test_triton_serves_the_int8_graph(int8_model, tmp_path) -> None:
    pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc,http] not installed")
    from triton_helpers import ServerUnavailable, start_server

    options = TritonOptions(backend="python", max_batch_size=8, ort_threads=1)
    repo = export_triton(int8_model, tmp_path / "repo", options)
    assert 'key: "precision" value: { string_value: "int8" }' in repo.config_path.read_text()
    try:
        server = start_server(tmp_path / "repo", tmp_path / "server")
    except ServerUnavailable as exc:
        pytest.skip(f"tritonserver cannot start here: {exc}")
    try:
        with Detector(int8_model) as local, Detector(server.url("uniad")) as remote:
            assert remote.metadata.precision == "int8"
            for frame in _frames():
                assert remote(frame).score == pytest.approx(local(frame).score, rel=1e-5)
    finally:
        server.stop()


def test_tensorrt_accelerators_get_the_int8_flag_for_the_qdq_graph(int8_model, tmp_path) -> None:
    """TensorRT refuses Q/DQ layers without its INT8 flag; the layers left float stay float32."""
    options = tensorrt_ep_options(int8_model, tmp_path / "engines")
    assert options["trt_int8_enable"] == "True" and options["trt_fp16_enable"] == "False"
    assert not any("calibration_table" in key for key in options)  # the scales are in the graph
    with Detector(int8_model) as det:
        config = config_text(det.metadata, TritonOptions(ort_trt_fp16=True))
    assert '"precision_mode" value: "INT8"' in config and "FP16" not in config
