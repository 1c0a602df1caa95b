"""TensorRTBackend up to the point that needs a GPU: sidecar checks, rebuild decision, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from trt_helpers import ORIN, make_sidecar

from uniad_edge.artifacts import sidecar_path
from uniad_edge.errors import UniadError
from uniad_edge.runtime.backends import tensorrt_backend
from uniad_edge.runtime.backends.tensorrt_backend import TensorRTBackend, source_onnx
from uniad_edge.runtime.loader import load_backend
from uniad_edge.trt.environment import TensorRTStatus
from uniad_edge.trt.sidecar import EngineSidecar, Profile, engine_path


def write_engine(root: Path, onnx_path: str = "export/model.onnx") -> Path:
    """A fake engine file and a real sidecar saying it was built with TensorRT 8.6.2 on Orin."""
    engine = engine_path(root / "engines", "model", ORIN, "fp16")
    engine.parent.mkdir(parents=True, exist_ok=True)
    engine.write_bytes(b"not really an engine")
    sidecar = make_sidecar(
        onnx_path=onnx_path, profile=Profile(1, 2, 4), input_size=(64, 64), workspace_bytes=2 << 30
    )
    sidecar.write(sidecar_path(engine))
    return engine


@pytest.fixture
def trt10_on_orin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend TensorRT 10.3.0 and an Orin GPU are usable (the probe only, nothing else)."""
    status = TensorRTStatus(True, "", "10.3.0", "pycuda", ORIN)
    monkeypatch.setattr(tensorrt_backend, "detect", lambda: status)


def test_missing_tensorrt_is_one_line_with_alternatives(tmp_path: Path, no_tensorrt: None) -> None:
    engine = write_engine(tmp_path)
    with pytest.raises(UniadError) as caught:
        TensorRTBackend(engine)
    message = str(caught.value)
    assert "TensorRT is not installed" in message
    assert "8.6.2" in message and "Orin" in message
    assert "--model export/model.onnx" in message
    assert "\n" not in message


def test_loader_reports_missing_tensorrt(tmp_path: Path, no_tensorrt: None) -> None:
    with pytest.raises(UniadError, match="TensorRT"):
        load_backend(write_engine(tmp_path))


def test_missing_engine_or_sidecar(tmp_path: Path) -> None:
    with pytest.raises(UniadError, match="not found"):
        TensorRTBackend(tmp_path / "nothing.engine")
    orphan = tmp_path / "orphan.engine"
    orphan.write_bytes(b"x")
    with pytest.raises(UniadError, match="sidecar"):
        TensorRTBackend(orphan)


def test_other_tensorrt_version_without_onnx_names_both(
    tmp_path: Path, trt10_on_orin: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = write_engine(tmp_path, onnx_path=str(tmp_path / "gone.onnx"))
    with pytest.raises(UniadError) as caught:
        TensorRTBackend(engine)
    message = str(caught.value)
    assert "8.6.2" in message and "10.3.0" in message and "rebuild" in message


def test_other_tensorrt_version_rebuilds_from_onnx_with_same_settings(
    tmp_path: Path, trt10_on_orin: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx = tmp_path / "export" / "model.onnx"
    onnx.parent.mkdir()
    onnx.write_bytes(b"onnx")
    engine = write_engine(tmp_path, onnx_path=str(onnx))
    calls: list[tuple[Any, ...]] = []

    def fake_build(path: Path, **kwargs: Any) -> Path:
        calls.append((path, kwargs))
        raise UniadError("stop after the rebuild decision")

    monkeypatch.setattr(tensorrt_backend, "build_engine", fake_build)
    with pytest.raises(UniadError, match="stop after"):
        TensorRTBackend(engine)
    [(path, kwargs)] = calls
    assert path == onnx
    assert kwargs["out_dir"] == engine.parent
    assert (kwargs["min_batch"], kwargs["opt_batch"], kwargs["max_batch"]) == (1, 2, 4)
    assert kwargs["precision"] == "fp16" and kwargs["workspace_gib"] == 2


def test_source_onnx_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = write_engine(tmp_path, onnx_path="/elsewhere/model.onnx")
    sidecar = EngineSidecar.read(sidecar_path(engine))
    assert source_onnx(engine, sidecar) is None
    beside = tmp_path / "export" / "model.onnx"
    beside.parent.mkdir()
    beside.write_bytes(b"x")
    assert source_onnx(engine, sidecar) == beside
    next_to_engine = engine.parent / "model.onnx"
    next_to_engine.write_bytes(b"x")
    assert source_onnx(engine, sidecar) == next_to_engine


def test_runtime_module_imports_neither_tensorrt_nor_torch() -> None:
    code = (
        "import sys\n"
        "for m in ('tensorrt', 'torch', 'pycuda', 'cuda'): sys.modules[m] = None\n"
        "import uniad_edge.runtime.backends.tensorrt_backend, uniad_edge.trt\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr
