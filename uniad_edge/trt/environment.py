"""Is TensorRT usable here, and if not, what should the user do instead?

`export --format auto` and `run` ask this once to pick engines or ONNX, so the answer carries a
human reason, the install hint and the equivalent `trtexec` command for building elsewhere.
"""

from __future__ import annotations

import functools
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..errors import UniadError
from ..metadata import DEFAULT_WORKSPACE_GIB
from .cuda_api import CudaApi, load_cuda_api
from .features import unsupported_reason
from .sidecar import GpuInfo, Profile
from .unavailable import (  # noqa: F401 - re-exported, where callers look for them
    INSTALL_HINT,
    TensorRTUnavailableError,
    import_tensorrt,
    tensorrt_missing_message,
)


@dataclass(frozen=True)
class TensorRTStatus:
    """Result of `detect()`: usable, or the reason it is not."""

    usable: bool
    reason: str = ""
    tensorrt_version: str | None = None
    cuda_api: str | None = None
    gpu: GpuInfo | None = None


def is_jetson() -> bool:
    """JetPack images carry /etc/nv_tegra_release; the device tree names the board."""
    if Path("/etc/nv_tegra_release").exists():
        return True
    try:
        return "jetson" in Path("/proc/device-tree/model").read_text(errors="ignore").lower()
    except OSError:
        return False


def nvidia_driver_present() -> bool:
    """Desktop drivers expose /proc/driver/nvidia; Jetson's integrated GPU the tegra files."""
    return Path("/proc/driver/nvidia/version").exists() or is_jetson()


@functools.lru_cache(maxsize=1)
def detect() -> TensorRTStatus:
    """Probe once per process: tensorrt import, a CUDA binding, a driver and at least one GPU."""
    try:
        trt = import_tensorrt()
    except TensorRTUnavailableError as exc:
        return TensorRTStatus(False, str(exc))
    version = str(getattr(trt, "__version__", "unknown"))
    unsupported = unsupported_reason(trt)
    if unsupported is not None:
        return TensorRTStatus(False, unsupported, version)
    try:
        api = cuda_api()
    except ImportError as exc:
        return TensorRTStatus(
            False,
            f"TensorRT {version} is installed but {exc}; `pip install pycuda` (or cuda-python)",
            version,
        )
    except Exception as exc:  # noqa: BLE001 - driver init failures come as many types
        return TensorRTStatus(False, _no_gpu_reason(exc), version)
    try:
        if api.device_count() < 1:
            return TensorRTStatus(False, "no CUDA GPU is visible", version, api.name)
        gpu = api.gpu_info()
    except Exception as exc:  # noqa: BLE001
        return TensorRTStatus(False, _no_gpu_reason(exc), version, api.name)
    return TensorRTStatus(True, "", version, api.name, gpu)


@functools.lru_cache(maxsize=1)
def cuda_api() -> CudaApi:
    """The process-wide CUDA binding (device 0)."""
    return load_cuda_api(0)


def _no_gpu_reason(exc: Exception) -> str:
    if not nvidia_driver_present():
        return f"no NVIDIA driver found, so no GPU is usable ({exc})"
    return f"the NVIDIA driver is present but CUDA failed to start ({exc})"


TRTEXEC_MODES = ("strongly-typed", "fp16-pinned", "int8-pinned", "fp32")


def trtexec_command(
    onnx_path: str | os.PathLike[str],
    engine: str | os.PathLike[str],
    input_name: str,
    input_size: tuple[int, int],
    profile: Profile,
    mode: str = "strongly-typed",
    head_layers: tuple[str, ...] = (),
    workspace_gib: float = DEFAULT_WORKSPACE_GIB,
    timing_cache: str | os.PathLike[str] | None = None,
    dynamic: bool = True,
    preview: tuple[str, ...] = (),
) -> str:
    """The `trtexec` line that builds the engine `build_engine` would, with the head in FP32.

    trtexec ships with TensorRT (/usr/src/tensorrt/bin/trtexec on JetPack). `strongly-typed`
    follows the mixed-precision ONNX's own types (TensorRT 10+); `fp16-pinned` is the FP16 flag
    with the distance-head layers (`head_layers`, named after their ONNX nodes) constrained to
    FP32 (8.6, 10.x); `int8-pinned` adds the INT8 flag for the Q/DQ graph on 8.6 (no
    calibrator: the graph's scales are used); `fp32` disables TF32 so fp32 means fp32.
    `preview` are trtexec `--preview=` flags (8.6: profile sharing for a second worker thread).
    """
    if mode not in TRTEXEC_MODES:
        raise UniadError(f"trtexec mode {mode!r} is not one of {', '.join(TRTEXEC_MODES)}")
    args = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine}"]
    if mode == "strongly-typed":
        args.append("--stronglyTyped")
    elif mode in ("fp16-pinned", "int8-pinned"):
        args += ["--int8"] if mode == "int8-pinned" else []
        args += ["--fp16", "--precisionConstraints=obey"]
        if head_layers:
            spec = ",".join(f"{name}:fp32" for name in head_layers)
            args += [f"--layerPrecisions={spec}", f"--layerOutputTypes={spec}"]
    else:
        args.append("--noTF32")
    if dynamic:
        height, width = input_size
        for flag, shape in zip(("min", "opt", "max"), profile.shapes(height, width), strict=True):
            args.append(f"--{flag}Shapes={input_name}:{'x'.join(str(d) for d in shape)}")
    args.append(f"--memPoolSize=workspace:{int(round(workspace_gib * 1024))}")
    if timing_cache is not None:
        args.append(f"--timingCacheFile={timing_cache}")
    args += list(preview)
    return " ".join(shlex.quote(a) for a in args)
