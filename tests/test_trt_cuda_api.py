"""Choice of CUDA binding and the cuda-python wrapper's bookkeeping, with a stand-in `cudart`.

The stand-in mimics cuda-python's (error, value) return convention only; it tests OUR wrapper
(binding selection, error checks, pinned array layout), not CUDA.
"""

from __future__ import annotations

import ctypes
import sys
from enum import Enum
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest

from uniad_edge.errors import UniadError
from uniad_edge.trt.cuda_api import CudaPythonApi, load_cuda_api


class Err(Enum):
    cudaSuccess = 0
    cudaErrorMemoryAllocation = 2


def fake_cudart() -> ModuleType:
    rt = ModuleType("cuda.bindings.runtime")
    buffers: dict[int, Any] = {}
    rt.calls = []  # type: ignore[attr-defined]
    rt.cudaError_t = Err  # type: ignore[attr-defined]
    rt.cudaMemcpyKind = SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2)  # type: ignore[attr-defined]

    def malloc_host(nbytes: int) -> tuple[Err, int]:
        buffer = ctypes.create_string_buffer(nbytes)
        buffers[ctypes.addressof(buffer)] = buffer
        return Err.cudaSuccess, ctypes.addressof(buffer)

    def record(name: str, result: tuple[Any, ...]) -> Any:
        def call(*args: Any) -> tuple[Any, ...]:
            rt.calls.append((name, args))  # type: ignore[attr-defined]
            return result

        return call

    rt.cudaMallocHost = malloc_host  # type: ignore[attr-defined]
    rt.cudaFreeHost = record("cudaFreeHost", (Err.cudaSuccess,))  # type: ignore[attr-defined]
    rt.cudaMalloc = record("cudaMalloc", (Err.cudaErrorMemoryAllocation, 0))  # type: ignore[attr-defined]
    rt.cudaMemcpyAsync = record("cudaMemcpyAsync", (Err.cudaSuccess,))  # type: ignore[attr-defined]
    rt.cudaGetErrorString = lambda err: (Err.cudaSuccess, b"out of memory")  # type: ignore[attr-defined]

    # Events, with cuda-python's signatures: every argument positional and required.
    def event_create() -> tuple[Err, int]:
        rt.calls.append(("cudaEventCreate", ()))  # type: ignore[attr-defined]
        return Err.cudaSuccess, 77

    def stream_wait_event(stream: Any, event: Any, flags: int) -> tuple[Err]:
        rt.calls.append(("cudaStreamWaitEvent", (stream, event, flags)))  # type: ignore[attr-defined]
        return (Err.cudaSuccess,)

    def event_record(event: Any, stream: Any) -> tuple[Err]:
        rt.calls.append(("cudaEventRecord", (event, stream)))  # type: ignore[attr-defined]
        return (Err.cudaSuccess,)

    def event_one(name: str) -> Any:
        def call(event: Any) -> tuple[Err]:
            rt.calls.append((name, (event,)))  # type: ignore[attr-defined]
            return (Err.cudaSuccess,)

        return call

    rt.cudaEventCreate = event_create  # type: ignore[attr-defined]
    rt.cudaEventRecord = event_record  # type: ignore[attr-defined]
    rt.cudaStreamWaitEvent = stream_wait_event  # type: ignore[attr-defined]
    rt.cudaEventSynchronize = event_one("cudaEventSynchronize")  # type: ignore[attr-defined]
    rt.cudaEventDestroy = event_one("cudaEventDestroy")  # type: ignore[attr-defined]
    props = SimpleNamespace(name=b"Orin\x00\x00\x00", major=8, minor=7)
    rt.cudaGetDeviceProperties = lambda device: (Err.cudaSuccess, props)  # type: ignore[attr-defined]
    return rt


@pytest.fixture
def cudart(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    rt = fake_cudart()
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    monkeypatch.setitem(sys.modules, "cuda", ModuleType("cuda"))
    monkeypatch.setitem(sys.modules, "cuda.bindings", ModuleType("cuda.bindings"))
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", rt)
    return rt


def test_falls_back_to_cuda_python_without_pycuda(cudart: ModuleType) -> None:
    api = load_cuda_api()
    assert isinstance(api, CudaPythonApi) and api.name == "cuda-python"
    gpu = api.gpu_info()
    assert (gpu.name, gpu.compute_capability) == ("Orin", (8, 7))


def test_neither_binding_is_an_import_error_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("pycuda", "pycuda.driver", "cuda", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match="pycuda.*cuda-python"):
        load_cuda_api()


def test_pinned_array_shape_dtype_and_copy_arguments(cudart: ModuleType) -> None:
    api = load_cuda_api()
    array = api.pinned_empty((2, 3, 4), np.dtype(np.float32))
    assert array.shape == (2, 3, 4) and array.dtype == np.float32
    array[:] = 1.5
    assert float(array.sum()) == 1.5 * 24
    api.htod_async(1234, array[:1], stream="s")
    name, (dst, src, nbytes, kind, stream) = cudart.calls[-1]
    assert (name, dst, src, nbytes, kind, stream) == (
        "cudaMemcpyAsync",
        1234,
        array.ctypes.data,
        48,
        1,
        "s",
    )
    api.free_pinned(array)
    assert cudart.calls[-1][0] == "cudaFreeHost"


def test_cuda_errors_become_one_line_errors(cudart: ModuleType) -> None:
    with pytest.raises(UniadError, match="CUDA error: out of memory"):
        load_cuda_api().malloc(1 << 40)


def test_events_order_the_copy_and_compute_streams_with_cuda_python_signatures(
    cudart: ModuleType,
) -> None:
    api = load_cuda_api()
    event = api.create_event()
    api.record_event(event, "copy")
    api.wait_event("compute", event)
    api.synchronize_event(event)
    api.destroy_event(event)
    assert cudart.calls[-5:] == [
        ("cudaEventCreate", ()),
        ("cudaEventRecord", (77, "copy")),
        ("cudaStreamWaitEvent", ("compute", 77, 0)),
        ("cudaEventSynchronize", (77,)),
        ("cudaEventDestroy", (77,)),
    ]
