"""Real TensorRT engine build and inference, run only where tensorrt imports and a GPU works."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx_fixtures import build_model

from uniad_edge.runtime.tensorrt_backend import TensorRTBackend
from uniad_edge.trt import build_engine, detect
from uniad_edge.trt.sidecar import EngineSidecar, sidecar_path

STATUS = detect()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not STATUS.usable, reason=f"TensorRT engine tests: {STATUS.reason}"),
]


def reference(onnx_path: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    maps, scores = session.run(["anomaly_map", "score"], {"image": images})
    return maps, scores


def frames(count: int, size: tuple[int, int] = (32, 32), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *size, 3), dtype=np.uint8)


@pytest.mark.parametrize("precision,rtol", [("fp32", 1e-4), ("fp16", 1e-2)])
def test_dynamic_engine_matches_onnxruntime(tmp_path: Path, precision: str, rtol: float) -> None:
    onnx_path = tmp_path / "export" / "model.onnx"
    build_model(onnx_path, (32, 32))
    messages: list[str] = []
    engine = build_engine(
        onnx_path, tmp_path / "engines", precision=precision, max_batch=4, progress=messages.append
    )
    sidecar = EngineSidecar.read(sidecar_path(engine))
    assert sidecar.tensorrt_version == STATUS.tensorrt_version and sidecar.gpu == STATUS.gpu
    assert (sidecar.profile.min_batch, sidecar.profile.max_batch) == (1, 4)
    assert list(tmp_path.glob("engines/timing-*.cache"))
    images = frames(6)
    with TensorRTBackend(engine) as backend:
        maps, scores = backend.infer(images)
        single_map, single_score = backend.infer(images[:1])
    want_maps, want_scores = reference(onnx_path, images)
    assert maps.dtype == np.float32 and maps.shape == (6, 32, 32) and scores.shape == (6,)
    assert np.abs(maps - want_maps).max() <= rtol * np.abs(want_maps).max()
    assert np.allclose(scores, want_scores, rtol=rtol, atol=rtol)
    assert np.allclose(single_map[0], maps[0]) and np.isclose(single_score[0], scores[0])


def test_cache_hit_skips_rebuild_and_force_rebuilds(tmp_path: Path) -> None:
    onnx_path = tmp_path / "model.onnx"
    build_model(onnx_path, (32, 32))
    engine = build_engine(onnx_path, tmp_path, precision="fp32", max_batch=2)
    stamp = engine.stat().st_mtime_ns
    messages: list[str] = []
    assert (
        build_engine(onnx_path, tmp_path, precision="fp32", max_batch=2, progress=messages.append)
        == engine
    )
    assert engine.stat().st_mtime_ns == stamp and "up to date" in messages[0]
    build_engine(onnx_path, tmp_path, precision="fp32", max_batch=2, force=True)
    assert engine.stat().st_mtime_ns != stamp


def test_static_batch_engine_pads_and_chunks(tmp_path: Path) -> None:
    onnx_path = tmp_path / "static.onnx"
    build_model(onnx_path, (32, 32), batch=2)
    engine = build_engine(onnx_path, tmp_path, precision="fp32", max_batch=8)
    assert EngineSidecar.read(sidecar_path(engine)).profile.max_batch == 2
    images = frames(3, seed=1)
    with TensorRTBackend(engine) as backend:
        maps, scores = backend.infer(images)
    want_maps, want_scores = reference(onnx_path, np.concatenate([images, images[:1]]))
    assert np.allclose(maps, want_maps[:3], rtol=1e-4, atol=1e-3)
    assert np.allclose(scores, want_scores[:3], rtol=1e-4, atol=1e-3)


def test_worker_threads_get_their_own_context(tmp_path: Path) -> None:
    onnx_path = tmp_path / "model.onnx"
    build_model(onnx_path, (32, 32))
    engine = build_engine(onnx_path, tmp_path, precision="fp32", max_batch=2)
    images = frames(2, seed=2)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    with TensorRTBackend(engine) as backend:
        expected = backend.infer(images)[1]

        def work(index: int) -> None:
            try:
                for _ in range(20):
                    results[index] = backend.infer(images)[1]
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    for scores in results.values():
        assert np.allclose(scores, expected)
