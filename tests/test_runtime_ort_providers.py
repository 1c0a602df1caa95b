"""Issue 17 item 4: an ONNX Runtime GPU provider that was asked for but did not start is one
clear error, not a silent CPU run (ONNX Runtime drops such a provider with a log warning, e.g.
onnxruntime-gpu 1.16 with `trt_timing_cache_path`, or missing CUDA libraries)."""

from __future__ import annotations

import onnxruntime as ort
import pytest
from onnx_fixtures import build_model

from uniad_edge.errors import UniadError
from uniad_edge.runtime.backends import onnxruntime_backend, ort_tensorrt_backend
from uniad_edge.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from uniad_edge.runtime.backends.ort_tensorrt_backend import OrtTensorRTBackend

ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
REAL_SESSION = ort.InferenceSession


class CpuOnlySession(REAL_SESSION):
    """A real CPU session that, like onnxruntime, silently leaves out the GPU providers."""

    asked: list[str] = []

    def __init__(self, path, sess_options=None, providers=None, provider_options=None):
        CpuOnlySession.asked = list(providers or [])
        super().__init__(path, sess_options, providers=["CPUExecutionProvider"])


@pytest.fixture
def gpu_install(monkeypatch):
    """onnxruntime-gpu that lists every provider but starts only the CPU one."""
    monkeypatch.setattr(onnxruntime_backend.ort, "get_available_providers", lambda: list(ALL))
    monkeypatch.setattr(onnxruntime_backend.ort, "InferenceSession", CpuOnlySession)


@pytest.mark.parametrize(
    ("asked", "missing"),
    [(["cuda", "cpu"], "CUDAExecutionProvider"), (["tensorrt"], "TensorrtExecutionProvider")],
)
def test_asked_gpu_provider_that_did_not_start_is_one_line(tmp_path, gpu_install, asked, missing):
    model = tmp_path / "m.onnx"
    build_model(model)
    with pytest.raises(UniadError) as caught:
        OnnxRuntimeBackend(model, providers=asked)
    message = str(caught.value)
    assert missing in message and "running: CPUExecutionProvider" in message
    assert "onnxruntime-gpu >= 1.17" in message and "\n" not in message


def test_ort_tensorrt_backend_refuses_a_cpu_fallback(tmp_path, gpu_install) -> None:
    model = tmp_path / "m.onnx"
    build_model(model)
    with pytest.raises(UniadError, match="did not start TensorrtExecutionProvider, CUDA"):
        OrtTensorRTBackend(model, engine_dir=tmp_path / "engines")
    assert CpuOnlySession.asked[0] == ort_tensorrt_backend.TRT_PROVIDER


def test_cpu_as_asked_still_runs(tmp_path, gpu_install) -> None:
    model = tmp_path / "m.onnx"
    build_model(model)
    backend = OnnxRuntimeBackend(model, providers=["cpu"])
    assert backend.session.get_providers() == ["CPUExecutionProvider"]


def test_gpu_extra_needs_onnxruntime_1_17() -> None:
    """trt_timing_cache_path (set by the ort-tensorrt backend) arrived in onnxruntime 1.17."""
    from pathlib import Path

    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert project["project"]["optional-dependencies"]["gpu"] == ["onnxruntime-gpu>=1.17"]
