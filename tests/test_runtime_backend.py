"""ONNX Runtime backend and the suffix-based loader: metadata sources and one-line errors."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx_fixtures import build_model, fixture_metadata

from uniad_edge.errors import UniadError
from uniad_edge.runtime import loader
from uniad_edge.runtime.backends.onnxruntime_backend import (
    OnnxRuntimeBackend,
    choose_providers,
)


def test_reads_embedded_metadata_and_infers(tmp_path):
    path = tmp_path / "m.onnx"
    meta = build_model(path, input_size=(24, 40), sidecar=False)
    backend = loader.load_backend(path, threads=1)
    assert isinstance(backend, OnnxRuntimeBackend)
    assert backend.metadata == meta and backend.input_shape == (None, 24, 40, 3)
    maps, scores = backend.infer(np.zeros((2, 24, 40, 3), np.uint8))
    assert maps.shape == (2, 24, 40) and scores.shape == (2,) and maps.dtype == np.float32


def test_falls_back_to_sidecar(tmp_path):
    path = tmp_path / "m.onnx"
    build_model(path, embed_metadata=False, threshold=12.5)
    assert OnnxRuntimeBackend(path).metadata.thresholds.global_ == 12.5


def test_missing_metadata_is_an_error(tmp_path):
    path = tmp_path / "m.onnx"
    build_model(path, embed_metadata=False, sidecar=False)
    with pytest.raises(UniadError, match="no uniad-edge metadata"):
        OnnxRuntimeBackend(path)


def test_sidecar_of_another_model_is_refused(tmp_path):
    path = tmp_path / "m.onnx"
    build_model(path, embed_metadata=False)
    data = json.loads(path.with_suffix(".json").read_text())
    data["input_size"] = [64, 64]
    path.with_suffix(".json").write_text(json.dumps(data))
    with pytest.raises(UniadError, match="does not match"):
        OnnxRuntimeBackend(path)


def test_static_batch_read_from_graph(tmp_path):
    path = tmp_path / "m.onnx"
    build_model(path, batch=2)
    assert OnnxRuntimeBackend(path).input_shape[0] == 2


@pytest.mark.parametrize("content", [b"", b"not an onnx file at all", b"\x08\x07" * 50])
def test_corrupt_onnx_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(UniadError) as info:
        loader.load_backend(path)
    assert "broken.onnx" in str(info.value) and "\n" not in str(info.value)


def test_missing_model_and_unknown_suffix(tmp_path):
    with pytest.raises(UniadError, match="uniad-edge export"):
        loader.load_backend(tmp_path / "nope.onnx")
    (tmp_path / "m.bin").write_bytes(b"x")
    with pytest.raises(UniadError, match="suffix"):
        loader.load_backend(tmp_path / "m.bin")
    with pytest.raises(UniadError, match="unknown backend"):
        loader.load_backend(tmp_path / "m.bin", backend="openvino")


def test_providers_auto_and_override():
    assert choose_providers()[-1] == "CPUExecutionProvider"
    assert set(choose_providers()) <= set(ort.get_available_providers())
    assert choose_providers(["cpu"]) == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(UniadError, match="CUDAExecutionProvider"):
            choose_providers(["cuda", "cpu"])


def test_bad_thread_count(tmp_path):
    path = tmp_path / "m.onnx"
    build_model(path)
    with pytest.raises(UniadError, match="threads"):
        OnnxRuntimeBackend(path, threads=0)


def _engine_with_sidecar(tmp_path, trt_version: str):
    from uniad_edge.trt.sidecar import EngineSidecar, GpuInfo, Profile

    engine = tmp_path / "model.orin-sm87.fp16.engine"
    engine.write_bytes(b"serialized engine")
    EngineSidecar(
        name="model",
        onnx_path=str(tmp_path / "absent.onnx"),
        onnx_sha256="0" * 64,
        engine_sha256="1" * 64,
        tensorrt_version=trt_version,
        gpu=GpuInfo("Orin", (8, 7)),
        precision="fp16",
        strongly_typed=False,
        profile=Profile(1, 1, 1),
        input_name="image",
        input_size=(32, 32),
        workspace_bytes=1 << 30,
        cache_key="k",
    ).write(engine.with_suffix(".json"))
    return engine


def test_engine_for_another_tensorrt_version(tmp_path, monkeypatch):
    from uniad_edge.runtime.backends import tensorrt_backend
    from uniad_edge.trt.environment import TensorRTStatus
    from uniad_edge.trt.sidecar import GpuInfo

    engine = _engine_with_sidecar(tmp_path, "8.6.1")
    here = TensorRTStatus(True, "", "10.3.0", "cuda-python", GpuInfo("Orin", (8, 7)))
    monkeypatch.setattr(tensorrt_backend, "detect", lambda: here)
    with pytest.raises(UniadError) as info:
        loader.load_backend(engine)
    message = str(info.value)
    assert "TensorRT 8.6.1" in message and "10.3.0" in message and "\n" not in message


def test_engine_without_tensorrt_points_to_onnx(tmp_path, monkeypatch):
    from uniad_edge.runtime.backends import tensorrt_backend
    from uniad_edge.trt.environment import TensorRTStatus

    engine = _engine_with_sidecar(tmp_path, "10.3.0")
    monkeypatch.setattr(
        tensorrt_backend, "detect", lambda: TensorRTStatus(False, "TensorRT is not installed")
    )
    with pytest.raises(UniadError, match="TensorRT is not installed.*--model"):
        loader.load_backend(engine)


def test_checkpoint_suffix_goes_to_torch_backend(tmp_path):
    path = tmp_path / "ckpt.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UniadError, match="ckpt.pth"):
        loader.load_backend(path)


DENORMAL_BITS = struct.pack("<I", round(1e-39 / 2.0**-149))  # float32 1e-39, a denormal


def _denormal_model(path) -> None:
    """A contract-shaped graph whose map is 3e-39 per pixel (a float32 denormal) for ones."""
    from onnx import TensorProto, helper

    from uniad_edge.metadata import METADATA_KEY

    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "tiny"], ["scaled"]),
        helper.make_node("ReduceSum", ["scaled", "axis_c"], ["anomaly_map"], keepdims=0),
        helper.make_node("ReduceMax", ["anomaly_map"], ["score"], axes=[1, 2], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "denormal",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", 8, 8, 3])],
        [
            helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["batch", 8, 8]),
            helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"]),
        ],
        [
            # By bit pattern: this process may already flush denormals (an earlier backend set
            # the flag process-wide), which would turn a converted 1e-39 into 0.
            helper.make_tensor("tiny", TensorProto.FLOAT, [1], DENORMAL_BITS, raw=True),
            helper.make_tensor("axis_c", TensorProto.INT64, [1], [3]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {METADATA_KEY: fixture_metadata((8, 8)).to_json()})
    path.write_bytes(model.SerializeToString())


FLUSH_PROBE = """
import sys
import numpy as np
path, mode = sys.argv[1], sys.argv[2]
frames = np.ones((2, 8, 8, 3), np.uint8)
if mode == "backend":
    from uniad_edge.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
    maps, _ = OnnxRuntimeBackend(path).infer(frames)
else:
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    maps, _ = session.run(None, {"image": frames})
print(repr(float(np.abs(maps).max())))
"""


def test_session_flushes_denormals(tmp_path):
    """Denormals from a trained model slow x86 CPUs ~1.8x; the backend's session must flush
    them to zero. ONNX Runtime applies the setting once per process (from the first session),
    so each case runs in a fresh interpreter; a plain session shows the graph makes denormals."""
    path = tmp_path / "m.onnx"
    _denormal_model(path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def probe(mode: str) -> float:
        command = [sys.executable, "-c", FLUSH_PROBE, str(path), mode]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return float(done.stdout.strip())

    assert 0 < probe("plain") < np.finfo(np.float32).tiny  # a denormal without the setting
    assert probe("backend") == 0.0
