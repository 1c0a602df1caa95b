"""Adopt an engine built elsewhere (trtexec): write the sidecar `run` and `bench` need.

trtexec writes only the engine. The runtime trusts an engine only through its sidecar (model
metadata, TensorRT version, GPU, batch profile), so this writes one from the ONNX it was built
from and from this machine's TensorRT and GPU, or the ones given when Python TensorRT or a CUDA
binding is missing here.
"""

from __future__ import annotations

import importlib
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from ..errors import UniadError
from ..fileio import sha256_file
from ..metadata import DEFAULT_MAX_BATCH, DEFAULT_WORKSPACE_GIB, GIB, PRECISIONS
from . import environment
from .builder import trtexec_modes, trtexec_target
from .onnx_info import read_onnx_info
from .sidecar import (
    EngineSidecar,
    GpuInfo,
    cache_key,
    resolve_profile,
    sidecar_path,
)


def parse_gpu(text: str) -> GpuInfo:
    """'Orin:8.7' -> GpuInfo('Orin', (8, 7))."""
    match = re.fullmatch(r"(.+):(\d+)\.(\d+)", text.strip())
    if not match:
        raise UniadError(f"--gpu {text!r} is not NAME:MAJOR.MINOR, e.g. 'Orin:8.7'")
    return GpuInfo(match.group(1), (int(match.group(2)), int(match.group(3))))


def _local_tensorrt_version() -> str | None:
    try:
        return str(importlib.import_module("tensorrt").__version__)
    except (ImportError, OSError, AttributeError):
        return None


def _local_gpu() -> GpuInfo | None:
    try:
        return environment.cuda_api().gpu_info()
    except Exception:  # noqa: BLE001 - no binding or driver: the caller asks for --gpu
        return None


def adopt_engine(
    engine: str | os.PathLike[str],
    onnx_path: str | os.PathLike[str],
    trt_version: str | None = None,
    gpu: GpuInfo | None = None,
    precision: str | None = None,
    min_batch: int = 1,
    opt_batch: int = 1,
    max_batch: int = DEFAULT_MAX_BATCH,
    workspace_gib: float = DEFAULT_WORKSPACE_GIB,
) -> Path:
    """Write `engine`'s sidecar from `onnx_path`'s metadata; returns the sidecar path.

    The precision, batch range and workspace must be the ones the trtexec line used (the line
    `equivalent_trtexec` prints passes them all); `precision` None is int8 for the Q/DQ graph,
    else fp16. Whether the network was strongly typed follows from the trtexec line of that
    TensorRT family, so the sidecar says what `build_engine` would have recorded.
    """
    engine = Path(engine)
    if not engine.is_file():
        raise UniadError(f"engine {engine} not found; build it with the printed trtexec line")
    onnx = read_onnx_info(onnx_path)
    if not onnx.metadata:
        raise UniadError(f"{onnx_path} has no uniad-edge metadata; adopt engines of our exports")
    precision = precision or ("int8" if onnx.precision == "int8" else "fp16")
    if precision not in PRECISIONS:
        raise UniadError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    trt_version = trt_version or _local_tensorrt_version()
    gpu = gpu or _local_gpu()
    if trt_version is None or gpu is None:
        raise UniadError(
            f"cannot tell which TensorRT and GPU built {engine} (no Python TensorRT or CUDA "
            "binding here): pass --trt-version (e.g. 10.3.0) and --gpu (e.g. 'Orin:8.7')"
        )
    profile = resolve_profile(onnx.batch, min_batch, opt_batch, max_batch)
    mode = trtexec_modes(precision, onnx.precision)[trtexec_target(trt_version)]
    if mode is None:
        raise UniadError(
            f"TensorRT {trt_version} builds no {precision} engine from {onnx_path} (a "
            f"{onnx.precision} graph), so {engine} was not built from it; pass the ONNX and "
            "--precision of the trtexec line that built it"
        )
    typed = mode == "strongly-typed"
    workspace = int(workspace_gib * GIB)
    digest = sha256_file(onnx_path)
    sidecar = EngineSidecar(
        name=onnx.name,
        onnx_path=str(onnx_path),
        onnx_sha256=digest,
        engine_sha256=sha256_file(engine),
        tensorrt_version=trt_version,
        gpu=gpu,
        precision=precision,
        strongly_typed=typed,
        profile=profile,
        input_name=onnx.input_name,
        input_size=onnx.input_size,
        workspace_bytes=workspace,
        cache_key=cache_key(digest, trt_version, gpu, precision, typed, profile, workspace),
        metadata=onnx.metadata,
        fp32_layers=len(onnx.pins),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    path = sidecar_path(engine)
    sidecar.write(path)
    return path
