"""TensorRT engines: build from the fused ONNX, describe in a sidecar, check before loading.

Importing this package never imports tensorrt, pycuda, cuda-python or torch; those are loaded
only when an engine is built or run.
"""

from .adopt import adopt_engine, parse_gpu
from .builder import build_engine, equivalent_trtexec, trtexec_lines
from .environment import TensorRTStatus, TensorRTUnavailableError, detect, tensorrt_missing_message
from .sidecar import EngineSidecar, GpuInfo, Profile, check_compatible, find_engines

__all__ = [
    "adopt_engine",
    "parse_gpu",
    "trtexec_lines",
    "EngineSidecar",
    "GpuInfo",
    "Profile",
    "TensorRTStatus",
    "TensorRTUnavailableError",
    "build_engine",
    "check_compatible",
    "detect",
    "equivalent_trtexec",
    "find_engines",
    "tensorrt_missing_message",
]
