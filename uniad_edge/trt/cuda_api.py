"""The few CUDA calls TensorRT inference needs, through pycuda or cuda-python.

Jetson images often ship only one of the two, so both are supported behind one small interface.
No `pycuda.autoinit`: it binds a context to the importing thread only, which breaks worker threads;
here every thread enters `activate()` around its CUDA work instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import UniadError
from .sidecar import GpuInfo


class CudaApi(ABC):
    """Device, stream and memory primitives on one GPU; pointers are plain ints."""

    name: str = "cuda"

    @abstractmethod
    def device_count(self) -> int: ...

    @abstractmethod
    def gpu_info(self) -> GpuInfo: ...

    @abstractmethod
    def activate(self) -> contextlib.AbstractContextManager[None]:
        """Make this GPU current for the calling thread for the duration of the block."""

    @abstractmethod
    def create_stream(self) -> Any: ...

    @abstractmethod
    def stream_handle(self, stream: Any) -> int: ...

    @abstractmethod
    def destroy_stream(self, stream: Any) -> None: ...

    @abstractmethod
    def synchronize(self, stream: Any) -> None: ...

    @abstractmethod
    def create_event(self) -> Any: ...

    @abstractmethod
    def destroy_event(self, event: Any) -> None: ...

    @abstractmethod
    def record_event(self, event: Any, stream: Any) -> None:
        """Mark the point in `stream` that `wait_event` and `synchronize_event` wait for."""

    @abstractmethod
    def wait_event(self, stream: Any, event: Any) -> None:
        """Work queued on `stream` from now on starts after `event` (on the device)."""

    @abstractmethod
    def synchronize_event(self, event: Any) -> None:
        """Block the calling thread until `event` has happened."""

    @abstractmethod
    def malloc(self, nbytes: int) -> int: ...

    @abstractmethod
    def free(self, ptr: int) -> None: ...

    @abstractmethod
    def pinned_empty(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        """Page-locked host array: async copies from pageable memory are silently synchronous."""

    @abstractmethod
    def free_pinned(self, array: np.ndarray) -> None: ...

    @abstractmethod
    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None: ...

    @abstractmethod
    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None: ...


class PyCudaApi(CudaApi):
    """pycuda with the device's primary context, pushed per thread (shared with the runtime API)."""

    name = "pycuda"

    def __init__(self, device: int = 0) -> None:
        self._drv = importlib.import_module("pycuda.driver")
        self._drv.init()
        self._device = self._drv.Device(device)
        self._context = self._device.retain_primary_context()
        self._allocations: dict[int, Any] = {}

    def device_count(self) -> int:
        return int(self._drv.Device.count())

    def gpu_info(self) -> GpuInfo:
        major, minor = self._device.compute_capability()
        return GpuInfo(str(self._device.name()), (int(major), int(minor)))

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        self._context.push()
        try:
            yield
        finally:
            self._drv.Context.pop()

    def create_stream(self) -> Any:
        return self._drv.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def destroy_stream(self, stream: Any) -> None:
        """pycuda has no destroy: a Stream (or Event) is destroyed with its last reference,
        which the caller must drop inside `activate()` (outside it pycuda leaks it)."""

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def create_event(self) -> Any:
        return self._drv.Event()

    def destroy_event(self, event: Any) -> None:
        """See `destroy_stream`."""

    def record_event(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def wait_event(self, stream: Any, event: Any) -> None:
        stream.wait_for_event(event)

    def synchronize_event(self, event: Any) -> None:
        event.synchronize()

    def malloc(self, nbytes: int) -> int:
        allocation = self._drv.mem_alloc(max(nbytes, 1))
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, ptr: int) -> None:
        allocation = self._allocations.pop(ptr, None)
        if allocation is not None:
            allocation.free()

    def pinned_empty(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        return self._drv.pagelocked_empty(shape, dtype)

    def free_pinned(self, array: np.ndarray) -> None:
        base = array.base
        if base is not None and hasattr(base, "free"):
            base.free()

    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self._drv.memcpy_htod_async(dst, src, stream)

    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self._drv.memcpy_dtoh_async(dst, src, stream)


def _import_cudart() -> ModuleType:
    """cuda-python moved the runtime bindings to `cuda.bindings.runtime` in 12.6."""
    try:
        return importlib.import_module("cuda.bindings.runtime")
    except ImportError:
        return importlib.import_module("cuda.cudart")


class CudaPythonApi(CudaApi):
    """cuda-python's runtime API: every call returns (error, *values)."""

    name = "cuda-python"

    def __init__(self, device: int = 0) -> None:
        self._rt = _import_cudart()
        self._device = device
        self._pinned: dict[int, int] = {}

    def _check(self, result: Any) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self._rt.cudaError_t.cudaSuccess:
            _, text = self._rt.cudaGetErrorString(err)
            message = text.decode() if isinstance(text, bytes) else str(text)
            raise UniadError(f"CUDA error: {message}")
        if not values:
            return None
        return values[0] if len(values) == 1 else tuple(values)

    def device_count(self) -> int:
        return int(self._check(self._rt.cudaGetDeviceCount()))

    def gpu_info(self) -> GpuInfo:
        props = self._check(self._rt.cudaGetDeviceProperties(self._device))
        name = props.name
        name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        return GpuInfo(name.split("\x00")[0].strip(), (int(props.major), int(props.minor)))

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        self._check(self._rt.cudaSetDevice(self._device))
        yield

    def create_stream(self) -> Any:
        return self._check(self._rt.cudaStreamCreate())

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def destroy_stream(self, stream: Any) -> None:
        self._check(self._rt.cudaStreamDestroy(stream))

    def synchronize(self, stream: Any) -> None:
        self._check(self._rt.cudaStreamSynchronize(stream))

    def create_event(self) -> Any:
        return self._check(self._rt.cudaEventCreate())

    def destroy_event(self, event: Any) -> None:
        self._check(self._rt.cudaEventDestroy(event))

    def record_event(self, event: Any, stream: Any) -> None:
        self._check(self._rt.cudaEventRecord(event, stream))

    def wait_event(self, stream: Any, event: Any) -> None:
        self._check(self._rt.cudaStreamWaitEvent(stream, event, 0))  # 0: cudaEventWaitDefault

    def synchronize_event(self, event: Any) -> None:
        self._check(self._rt.cudaEventSynchronize(event))

    def malloc(self, nbytes: int) -> int:
        return int(self._check(self._rt.cudaMalloc(max(nbytes, 1))))

    def free(self, ptr: int) -> None:
        self._check(self._rt.cudaFree(ptr))

    def pinned_empty(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
        ptr = int(self._check(self._rt.cudaMallocHost(nbytes)))
        raw = (ctypes.c_ubyte * nbytes).from_address(ptr)
        array = np.frombuffer(raw, dtype=np.uint8, count=nbytes)
        array = array[: int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)
        self._pinned[id(array)] = ptr
        return array

    def free_pinned(self, array: np.ndarray) -> None:
        ptr = self._pinned.pop(id(array), None)
        if ptr is not None:
            self._check(self._rt.cudaFreeHost(ptr))

    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self._rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream))

    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self._rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream))


def load_cuda_api(device: int = 0) -> CudaApi:
    """pycuda if importable, else cuda-python; `ImportError` naming both when neither is."""
    errors = []
    for cls in (PyCudaApi, CudaPythonApi):
        try:
            return cls(device)
        except ImportError as exc:
            errors.append(f"{cls.name}: {exc}")
    raise ImportError("neither pycuda nor cuda-python is importable (" + "; ".join(errors) + ")")
