"""Native TensorRT backend: one engine; per worker thread an execution context, a copy and a
compute stream, and two pinned batch slots so host-device copies overlap the engine.

tensorrt and the CUDA binding are imported when a backend is constructed, never at module import,
so the lean runtime imports without them. The engine's sidecar is checked before deserialising;
an engine built for another TensorRT or GPU is rebuilt from its ONNX when TensorRT is usable here.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...artifacts import parse_metadata, sidecar_path
from ...errors import UniadError
from ...metadata import GIB, OUTPUT_MAP, OUTPUT_SCORE
from ...trt import features
from ...trt.builder import build_engine
from ...trt.cuda_api import CudaApi
from ...trt.environment import cuda_api, detect, import_tensorrt
from ...trt.sidecar import EngineSidecar, check_compatible
from .base import Backend

log = logging.getLogger(__name__)


def source_onnx(engine: Path, sidecar: EngineSidecar) -> Path | None:
    """The ONNX an engine was built from: as recorded, else `export/<name>.onnx` near it."""
    recorded = Path(sidecar.onnx_path) if sidecar.onnx_path else None
    candidates = [
        recorded,
        engine.parent / recorded.name if recorded else None,
        engine.parent.parent / "export" / f"{sidecar.name}.onnx",
        Path("export") / f"{sidecar.name}.onnx",
    ]
    return next((p for p in candidates if p is not None and p.is_file()), None)


def _ensure_compatible(engine: Path, sidecar: EngineSidecar) -> Path:
    """The engine to load here: `engine` itself, or one rebuilt for this TensorRT and GPU."""
    status = detect()
    built_for = f"built for TensorRT {sidecar.tensorrt_version} on {sidecar.gpu.describe()}"
    if not status.usable or status.gpu is None or status.tensorrt_version is None:
        raise UniadError(
            f"cannot run engine {engine} ({built_for}): {status.reason}; or run the ONNX model "
            f"instead (--model {sidecar.onnx_path or 'export/model.onnx'})"
        )
    reason = check_compatible(sidecar, status.tensorrt_version, status.gpu)
    if reason is None:
        return engine
    onnx = source_onnx(engine, sidecar)
    if onnx is None:
        raise UniadError(
            f"cannot run {engine}: {reason}, and its ONNX ({sidecar.onnx_path or sidecar.name}) "
            "is not here to rebuild it; rebuild with `uniad-edge export --format engine`"
        )
    log.warning("%s; rebuilding from %s (minutes on a Jetson)", reason, onnx)
    return build_engine(
        onnx,
        out_dir=engine.parent,
        precision=sidecar.precision,
        min_batch=sidecar.profile.min_batch,
        opt_batch=sidecar.profile.opt_batch,
        max_batch=sidecar.profile.max_batch,
        workspace_gib=sidecar.workspace_bytes / GIB,
        progress=log.info,
    )


SLOTS = 2  # batches in flight per thread: one being copied in while the other computes


@dataclass
class _Slot:
    """One batch's pinned host and device buffers (allocated once, for max batch) and the events
    that say when its input copy and its whole run have finished."""

    copied: Any
    done: Any
    device: dict[str, int] = field(default_factory=dict)
    host: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _ThreadState:
    """A worker thread's execution context, its copy and compute streams, and `SLOTS` slots."""

    context: Any
    copy: Any
    compute: Any
    slots: list[_Slot] = field(default_factory=list)


def _release(cuda: CudaApi, state: _ThreadState) -> None:
    """Free a thread's buffers, events and streams, and drop the state's references to them;
    the caller holds the context (`activate()`)."""
    for slot in state.slots:
        for ptr in slot.device.values():
            cuda.free(ptr)
        for array in slot.host.values():
            cuda.free_pinned(array)
        cuda.destroy_event(slot.copied)
        cuda.destroy_event(slot.done)
        slot.device.clear()
        slot.host.clear()
        slot.copied = slot.done = None
    state.slots.clear()
    cuda.destroy_stream(state.copy)
    cuda.destroy_stream(state.compute)
    state.copy = state.compute = state.context = None


class TensorRTBackend(Backend):
    """Runs a `.engine` built by `uniad_edge.trt.build_engine` (TensorRT 8.6, 10.x and 11.x).

    Each worker thread gets its own execution context, which selects optimization profile 0
    before its first execute (TensorRT 8.6 gives it only to an engine's first context).
    """

    name = "tensorrt"

    def __init__(self, engine_path: str | Path) -> None:
        path = Path(engine_path)
        if not path.is_file():
            raise UniadError(f"engine {path} not found; build it with `uniad-edge export`")
        sidecar = EngineSidecar.read(sidecar_path(path))
        usable = _ensure_compatible(path, sidecar)
        if usable != path:  # rebuilt for this machine: its own sidecar now
            path, sidecar = usable, EngineSidecar.read(sidecar_path(usable))
        super().__init__(parse_metadata(sidecar.metadata, str(sidecar_path(path))))
        self.path = path
        self.sidecar = sidecar
        self._trt = import_tensorrt()
        self._cuda = cuda_api()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._states: list[_ThreadState] = []
        with self._cuda.activate():
            self._runtime = self._trt.Runtime(self._trt.Logger(self._trt.Logger.WARNING))
            self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise UniadError(
                f"TensorRT could not deserialise {path}; the file is damaged or was built "
                "elsewhere: rebuild it with `uniad-edge export --format engine --force`"
            )
        self._bind_tensors()

    def _bind_tensors(self) -> None:
        """Check the engine's signature and work out per-tensor shapes at max batch."""
        inputs, outputs = features.io_tensors(self._trt, self._engine)
        if len(inputs) != 1 or {OUTPUT_MAP, OUTPUT_SCORE} - set(outputs):
            raise UniadError(
                f"{self.path} is not a uniad-edge engine (inputs {inputs}, outputs {outputs}); "
                f"expected one input and outputs '{OUTPUT_MAP}', '{OUTPUT_SCORE}'"
            )
        self._input = inputs[0]
        self._max_batch = self.sidecar.profile.max_batch
        self._static = int(self._engine.get_tensor_shape(self._input)[0]) > 0
        if self._static:
            self._max_batch = int(self._engine.get_tensor_shape(self._input)[0])
            self.metadata.batch = self._max_batch
        h, w = self.metadata.graph_input_size
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._dtypes: dict[str, np.dtype[Any]] = {}
        for name in (self._input, OUTPUT_MAP, OUTPUT_SCORE):
            dims = tuple(int(d) for d in self._engine.get_tensor_shape(name))[1:]
            if any(d < 0 for d in dims):
                raise UniadError(f"{self.path}: tensor '{name}' has dynamic dims {dims}")
            self._shapes[name] = (self._max_batch, *dims)
            self._dtypes[name] = np.dtype(self._trt.nptype(self._engine.get_tensor_dtype(name)))
        if self._shapes[self._input][1:] != (h, w, 3) or self._dtypes[self._input] != np.uint8:
            raise UniadError(
                f"{self.path}: input {self._shapes[self._input][1:]} "
                f"{self._dtypes[self._input]} does not match uint8 {h}x{w}x3 in its sidecar"
            )

    def _state(self) -> _ThreadState:
        """This thread's context, streams and slots; created on the thread's first call."""
        state = getattr(self._local, "state", None)
        if state is not None:
            return state
        if self._engine is None:
            raise UniadError("the TensorRT backend is closed")
        context = self._engine.create_execution_context()
        if context is None:
            raise UniadError(f"TensorRT could not create an execution context for {self.path}")
        cuda = self._cuda
        state = _ThreadState(context, cuda.create_stream(), cuda.create_stream())
        profiles = int(getattr(self._engine, "num_optimization_profiles", 0))
        features.select_profile(context, cuda.stream_handle(state.compute), profiles)
        with self._lock:
            self._states.append(state)
        for _ in range(SLOTS):
            slot = _Slot(cuda.create_event(), cuda.create_event())
            for name, shape in self._shapes.items():
                slot.host[name] = cuda.pinned_empty(shape, self._dtypes[name])
                slot.device[name] = cuda.malloc(slot.host[name].nbytes)
            state.slots.append(slot)
        self._local.state = state
        return state

    @property
    def device_type(self) -> str:
        return "cuda"

    def infer(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Any batch size, in chunks of the engine's max batch (static engines are padded).

        Chunks are pipelined over two slots: while the engine computes chunk n on the compute
        stream, chunk n+1 is staged in pinned memory and copied on the copy stream, and chunk
        n-1's results are read back. Nothing is allocated per call but the returned arrays.
        """
        h, w = self.metadata.graph_input_size
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (h, w, 3):
            raise UniadError(
                f"TensorRT backend expects uint8 [B, {h}, {w}, 3], got {images.dtype} "
                f"{list(images.shape)}"
            )
        count = images.shape[0]
        maps = np.empty((count, *self._shapes[OUTPUT_MAP][1:]), np.float32)
        scores = np.empty((count,), np.float32)
        chunks = [(i, min(i + self._max_batch, count)) for i in range(0, count, self._max_batch)]
        with self._cuda.activate():
            state = self._state()
            try:
                for n, (start, stop) in enumerate(chunks):
                    self._enqueue(state, state.slots[n % SLOTS], images[start:stop])
                    if n > 0:
                        self._collect(state.slots[(n - 1) % SLOTS], chunks[n - 1], maps, scores)
                if chunks:
                    last = len(chunks) - 1
                    self._collect(state.slots[last % SLOTS], chunks[last], maps, scores)
            except BaseException:
                self._cuda.synchronize(state.copy)  # no copy may still read a slot we refill
                self._cuda.synchronize(state.compute)
                raise
        return maps, scores

    def _enqueue(self, state: _ThreadState, slot: _Slot, images: np.ndarray) -> None:
        """Stage `images` in the slot, copy them in on the copy stream, and queue the engine and
        the copies out on the compute stream behind that copy."""
        batch = len(images)
        run = self._max_batch if self._static else batch
        cuda, context = self._cuda, state.context
        slot.host[self._input][:batch] = images
        cuda.htod_async(slot.device[self._input], slot.host[self._input][:run], state.copy)
        cuda.record_event(slot.copied, state.copy)
        cuda.wait_event(state.compute, slot.copied)
        if not self._static:
            context.set_input_shape(self._input, (run, *self._shapes[self._input][1:]))
        for name, ptr in slot.device.items():
            context.set_tensor_address(name, ptr)
        if not context.execute_async_v3(cuda.stream_handle(state.compute)):
            raise UniadError(f"TensorRT inference failed on {self.path} (batch {run})")
        for name in (OUTPUT_MAP, OUTPUT_SCORE):
            cuda.dtoh_async(slot.host[name][:run], slot.device[name], state.compute)
        cuda.record_event(slot.done, state.compute)

    def _collect(
        self, slot: _Slot, chunk: tuple[int, int], maps: np.ndarray, scores: np.ndarray
    ) -> None:
        """Wait for a slot's run and copy its results into the caller's arrays."""
        start, stop = chunk
        batch = stop - start
        self._cuda.synchronize_event(slot.done)
        maps[start:stop] = slot.host[OUTPUT_MAP][:batch]
        scores[start:stop] = slot.host[OUTPUT_SCORE][:batch].reshape(batch)

    def close(self) -> None:
        """Free every thread's buffers and streams, then the engine (idempotent), from any
        thread: a model swap closes the old backend on the scoring thread.

        Every reference to a CUDA object is dropped inside `activate()`, the other threads'
        (`self._local`) included: pycuda destroys a stream or event when its last reference
        goes, and outside its context it cannot, and leaks it with a warning."""
        if self._engine is None:
            return
        with self._lock, self._cuda.activate():
            for state in self._states:
                _release(self._cuda, state)
            self._states.clear()
            self._local = threading.local()
            self._engine = None
            self._runtime = None
