"""Pick and construct the backend for an artifact from its file suffix.

Heavy backends (TensorRT, PyTorch) are imported only when their artifact is asked for, so the
ONNX Runtime path works on a device that has neither installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import UniadError
from .backend import Backend

SUFFIX_BACKENDS = {
    ".onnx": "onnxruntime",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
    ".pth": "torch",
    ".pt": "torch",
    ".tar": "torch",
}
BACKENDS = ("auto", "onnxruntime", "ort-tensorrt", "tensorrt", "torch")


def backend_for(path: str | Path, backend: str = "auto") -> str:
    """The backend name that `load_backend` would use for `path`."""
    if backend not in BACKENDS:
        raise UniadError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_BACKENDS:
        raise UniadError(
            f"cannot tell the backend of {path} from its suffix; use a .onnx, .engine/.plan or "
            ".pth/.pt/.tar file"
        )
    return SUFFIX_BACKENDS[suffix]


def load_backend(
    path: str | Path,
    backend: str = "auto",
    providers: Sequence[str] | None = None,
    threads: int | None = None,
) -> Backend:
    """Open `path` with the backend its suffix names (or `backend`), one-line errors otherwise."""
    path = Path(path)
    kind = backend_for(path, backend)
    if not path.is_file():
        raise UniadError(f"model {path} not found; run `uniad-edge export` to create it")
    if kind == "onnxruntime":
        from .onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, providers=providers, threads=threads)
    if kind == "ort-tensorrt":
        from .ort_tensorrt_backend import OrtTensorRTBackend

        return OrtTensorRTBackend(path, threads=threads)
    if kind == "tensorrt":
        return _load_tensorrt(path)
    return _load_torch(path, threads)


def _load_tensorrt(path: Path) -> Backend:
    """The TensorRT backend checks the engine's sidecar against this machine (and rebuilds a
    mismatched engine from its ONNX when it can) before deserialising."""
    try:
        from .tensorrt_backend import TensorRTBackend
    except ImportError as exc:
        raise UniadError(
            f"cannot run engine {path}: the TensorRT backend failed to import ({exc}); install "
            "`uniad-edge[tensorrt]` or run the ONNX model instead (--model export/model.onnx)"
        ) from None
    return TensorRTBackend(path)


def _load_torch(path: Path, threads: int | None) -> Backend:
    try:
        from ..model.torch_backend import TorchBackend
    except ImportError as exc:
        raise UniadError(
            f"cannot run checkpoint {path}: PyTorch backend unavailable ({exc}); install "
            "`uniad-edge[train]`, or export the checkpoint with `uniad-edge export` and run "
            "the .onnx"
        ) from None
    return TorchBackend(path, threads=threads)
