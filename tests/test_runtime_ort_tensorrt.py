"""The ONNX Runtime TensorRT-EP backend: its options, its wiring, and its refusal on a CPU build."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
import pytest
from onnx_fixtures import build_model, good_frame

from uniad_edge.bench.config import BenchConfig
from uniad_edge.bench.runner import run_bench
from uniad_edge.errors import UniadError
from uniad_edge.runtime.backends import onnxruntime_backend
from uniad_edge.runtime.backends.ort_tensorrt_backend import OrtTensorRTBackend, tensorrt_ep_options
from uniad_edge.runtime.loader import load_backend

TRT_EP = "TensorrtExecutionProvider"
HAS_TRT_EP = TRT_EP in ort.get_available_providers()


def test_options_are_float32_with_both_caches_under_engines(tmp_path: Path) -> None:
    """FP16 is off: the provider cannot keep the distance head float32 (module doc)."""
    dynamic = tmp_path / "dyn.onnx"
    build_model(dynamic, (32, 48))
    options = tensorrt_ep_options(dynamic, tmp_path / "engines", max_batch=4, workspace_gib=2)
    cache = tmp_path / "engines" / "ort-trt"
    digest = hashlib.sha256(dynamic.read_bytes()).hexdigest()
    assert options["trt_fp16_enable"] == "False"
    assert "trt_layer_norm_fp32_fallback" not in options
    assert options["trt_engine_cache_enable"] == options["trt_timing_cache_enable"] == "True"
    assert options["trt_engine_cache_path"] == str(cache / digest)
    assert options["trt_timing_cache_path"] == str(cache)
    assert options["trt_max_workspace_size"] == str(2 << 30)
    assert options["trt_profile_min_shapes"] == "image:1x32x48x3"
    assert options["trt_profile_max_shapes"] == "image:4x32x48x3"
    static = tmp_path / "static.onnx"
    build_model(static, (32, 48), batch=2)
    assert not any("profile" in k for k in tensorrt_ep_options(static, tmp_path))


@pytest.mark.skipif(HAS_TRT_EP, reason="this onnxruntime has the TensorRT provider")
def test_cpu_onnxruntime_refuses_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    build_model(model)
    with pytest.raises(UniadError) as caught:
        load_backend(model, "ort-tensorrt")
    message = str(caught.value)
    assert "onnxruntime-gpu" in message and TRT_EP in message and "\n" not in message
    assert not (tmp_path / "engines").exists()


def test_options_reach_the_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the provider present, the session gets our options for it (run here on the CPU)."""
    model = tmp_path / "m.onnx"
    build_model(model)
    seen: dict[str, object] = {}
    real_session = ort.InferenceSession

    class StartedSession:
        """A CPU session that reports the providers it was asked for, as a GPU build would."""

        def __init__(self, path, sess_options=None, providers=None, provider_options=None):
            seen["providers"], seen["options"] = providers, provider_options
            self._session = real_session(path, sess_options, providers=["CPUExecutionProvider"])

        def get_providers(self) -> list[str]:
            return list(seen["providers"])

        def __getattr__(self, name: str):
            return getattr(self._session, name)

    available = [TRT_EP, "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime_backend.ort, "get_available_providers", lambda: available)
    monkeypatch.setattr(onnxruntime_backend.ort, "InferenceSession", StartedSession)
    with OrtTensorRTBackend(model, engine_dir=tmp_path / "engines") as backend:
        maps, scores = backend.infer(np.stack([good_frame((32, 32))] * 2))
    assert seen["providers"] == available
    trt_options, cuda_options, cpu_options = seen["options"]
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert trt_options["trt_engine_cache_path"] == str(tmp_path / "engines" / "ort-trt" / digest)
    assert cuda_options == cpu_options == {}
    assert (tmp_path / "engines" / "ort-trt" / digest).is_dir()
    assert maps.shape == (2, 32, 32) and scores.shape == (2,)


@pytest.mark.skipif(HAS_TRT_EP, reason="this onnxruntime has the TensorRT provider")
def test_bench_reports_the_row_with_the_reason(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    build_model(model)
    report = run_bench(BenchConfig(model=model, backends=("ort-tensorrt",), workdir=tmp_path))
    [row] = report.rows
    assert row.status == "failed" and "TensorrtExecutionProvider" in row.reason


def test_other_weights_at_the_same_path_get_another_engine_cache(tmp_path: Path) -> None:
    """ORT's engine id ignores weights: a retrained model re-exported to the same path must not
    load the old engine, so the cache folder carries the file's sha256."""
    model = tmp_path / "model.onnx"
    build_model(model, (32, 32))
    first = tensorrt_ep_options(model, tmp_path / "engines")
    again = tensorrt_ep_options(model, tmp_path / "engines")
    retrained = onnx.load(model)
    weight = next(i for i in retrained.graph.initializer if i.data_type == onnx.TensorProto.FLOAT)
    values = onnx.numpy_helper.to_array(weight) + 1.0
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    onnx.save(retrained, model)
    second = tensorrt_ep_options(model, tmp_path / "engines")
    assert first["trt_engine_cache_path"] == again["trt_engine_cache_path"]
    assert first["trt_engine_cache_path"] != second["trt_engine_cache_path"]
    assert first["trt_timing_cache_path"] == second["trt_timing_cache_path"]
