"""The TensorRT backend's frame path against the fake tensorrt and CUDA (tests/trt_fakes.py):
pinned slots, a copy and a compute stream, chunks pipelined, nothing allocated per batch."""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import numpy as np
import pytest
from onnx_fixtures import build_model
from test_trt_versions import _forget_probe, install  # noqa: F401 - autouse: forget the fake probe

from uniad_edge.runtime.backends import tensorrt_backend
from uniad_edge.runtime.backends.tensorrt_backend import SLOTS, TensorRTBackend
from uniad_edge.trt import builder


def expected(frames: np.ndarray) -> np.ndarray:
    """What the fake engine computes: mean over BGR / 255."""
    return frames.astype(np.float32).mean(-1) / 255.0


@pytest.mark.parametrize("release", ["8.6", "10.16"])
def test_chunks_are_pipelined_over_two_streams_without_allocating_per_batch(
    release: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, release)
    cuda = tensorrt_backend.cuda_api()
    onnx = tmp_path / "model.onnx"
    build_model(onnx, input_size=(32, 32))
    engine = builder.build_engine(onnx, tmp_path, precision="fp32", max_batch=2)
    rng = np.random.default_rng(0)
    with TensorRTBackend(engine) as backend:
        first = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)  # 3 chunks of <= 2
        maps, scores = backend.infer(first)
        allocations = cuda.allocations
        [state] = backend._states
        for count in (1, 2, 7):
            frames = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
            again, again_scores = backend.infer(frames)
            np.testing.assert_allclose(again, expected(frames), rtol=1e-6)
            np.testing.assert_allclose(again_scores, expected(frames).max((1, 2)), rtol=1e-6)
        assert cuda.allocations == allocations == SLOTS * 3 * 2  # pinned + device, 3 tensors
        assert state.copy != state.compute and len(state.slots) == SLOTS
        assert not any(cuda.queues.values())  # every queued copy ran before infer returned
    np.testing.assert_allclose(maps, expected(first), rtol=1e-6)
    np.testing.assert_allclose(scores, expected(first).max((1, 2)), rtol=1e-6)


def test_close_on_the_scoring_thread_releases_cuda_objects_in_their_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model swap closes the old backend on the scoring thread, while another worker thread
    that used it is still alive: every stream, event and buffer of both threads is released
    with the context pushed (pycuda leaks it with a warning otherwise)."""
    install(monkeypatch, "10.16")
    cuda = tensorrt_backend.cuda_api()
    onnx = tmp_path / "model.onnx"
    build_model(onnx, input_size=(32, 32))
    engine = builder.build_engine(onnx, tmp_path, precision="fp32", max_batch=2)
    backend = TensorRTBackend(engine)
    frames = np.zeros((3, 32, 32, 3), np.uint8)
    helper_ran, stop = threading.Event(), threading.Event()

    def helper() -> None:  # a second worker, alive until after the close
        backend.infer(frames)
        helper_ran.set()
        stop.wait(30)

    def scoring() -> None:  # infers, then the swap closes the old model here
        backend.infer(frames)
        helper_ran.wait(30)
        objects.extend(
            weakref.ref(o)
            for state in backend._states
            for o in (
                state.copy,
                state.compute,
                *(e for s in state.slots for e in (s.copied, s.done)),
            )
        )
        backend.close()

    objects: list[weakref.ref] = []
    threads = [threading.Thread(target=helper), threading.Thread(target=scoring)]
    for thread in threads:
        thread.start()
    threads[1].join(30)
    try:
        assert len(objects) == 2 * (2 + 2 * SLOTS)
        assert all(ref() is None for ref in objects), "a stream or event outlived close()"
        assert cuda.out_of_context == []
    finally:
        stop.set()
        threads[0].join(30)
