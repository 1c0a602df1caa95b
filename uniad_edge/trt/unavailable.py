"""TensorRT missing: the install hint, the error carrying it, and the guarded import. Its own
module, so `environment` (which probes) and `features` (which checks versions) both use it
without importing each other."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import UniadError

INSTALL_HINT = (
    'install it with `pip install "uniad-edge[tensorrt]"` on x86-64 with CUDA, or on a Jetson '
    "use JetPack's TensorRT (`sudo apt install python3-libnvinfer`) plus `pip install pycuda`"
)


class TensorRTUnavailableError(UniadError):
    """TensorRT or a usable GPU is missing; carries the trtexec command to build elsewhere."""

    def __init__(self, message: str, trtexec: str = "") -> None:
        super().__init__(message)
        self.trtexec = trtexec


def import_tensorrt() -> ModuleType:
    """Import tensorrt or raise `TensorRTUnavailableError` with the install hint."""
    try:
        return importlib.import_module("tensorrt")
    except (ImportError, OSError) as exc:
        raise TensorRTUnavailableError(tensorrt_missing_message(str(exc))) from None


def tensorrt_missing_message(detail: str = "") -> str:
    """The one line shown wherever an engine is wanted but TensorRT cannot be imported."""
    why = f" ({detail})" if detail and "No module named" not in detail else ""
    return f"TensorRT is not installed{why}; {INSTALL_HINT}"
