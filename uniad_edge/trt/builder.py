"""Build a TensorRT engine from a uniad-edge ONNX file, once per model, device and settings.

Everything decided before TensorRT runs (profile, precision mode, paths, cache key) lives in
`plan_build`, which needs no TensorRT; `build_engine` adds the few TensorRT calls around it.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import UniadError
from ..fileio import sha256_file, write_bytes_atomic
from ..metadata import PRECISIONS
from . import features
from .environment import (
    TensorRTUnavailableError,
    cuda_api,
    detect,
    import_tensorrt,
    trtexec_command,
)
from .onnx_info import OnnxInfo, read_onnx_info
from .sidecar import (
    EngineSidecar,
    GpuInfo,
    Profile,
    cache_key,
    engine_path,
    resolve_profile,
    sidecar_path,
    timing_cache_path,
)

ProgressFn = Callable[[str], None]
GIB = 1 << 30


@dataclass(frozen=True)
class BuildPlan:
    """The engine to build and where it goes; equal `key`s mean an existing engine is reusable."""

    onnx_path: Path
    onnx: OnnxInfo
    onnx_sha256: str
    trt_version: str
    gpu: GpuInfo
    precision: str
    strongly_typed: bool
    profile: Profile
    workspace_bytes: int
    engine_path: Path
    sidecar_path: Path
    timing_cache_path: Path
    key: str


def _check_args(precision: str, workspace_gib: float) -> None:
    if precision not in PRECISIONS:
        raise UniadError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if not workspace_gib > 0:
        raise UniadError(f"workspace must be a positive number of GiB, got {workspace_gib}")


def plan_build(
    onnx_path: str | os.PathLike[str],
    onnx: OnnxInfo,
    out_dir: str | os.PathLike[str],
    trt_version: str,
    gpu: GpuInfo,
    precision: str = "fp16",
    strongly_typed: bool = False,
    min_batch: int = 1,
    opt_batch: int = 1,
    max_batch: int = 8,
    workspace_gib: float = 4.0,
) -> BuildPlan:
    """Decide the profile, paths and cache key (pure: no TensorRT, no GPU)."""
    _check_args(precision, workspace_gib)
    onnx_path = Path(onnx_path)
    profile = resolve_profile(onnx.batch, min_batch, opt_batch, max_batch)
    workspace = int(workspace_gib * GIB)
    digest = sha256_file(onnx_path)
    key = cache_key(digest, trt_version, gpu, precision, strongly_typed, profile, workspace)
    engine = engine_path(out_dir, onnx.name, gpu, precision)
    return BuildPlan(
        onnx_path=onnx_path,
        onnx=onnx,
        onnx_sha256=digest,
        trt_version=trt_version,
        gpu=gpu,
        precision=precision,
        strongly_typed=strongly_typed,
        profile=profile,
        workspace_bytes=workspace,
        engine_path=engine,
        sidecar_path=sidecar_path(engine),
        timing_cache_path=timing_cache_path(out_dir, gpu, trt_version),
        key=key,
    )


def is_up_to_date(plan: BuildPlan) -> bool:
    """The engine exists, its sidecar has the same key, and the engine bytes are the ones built."""
    if not (plan.engine_path.is_file() and plan.sidecar_path.is_file()):
        return False
    try:
        sidecar = EngineSidecar.read(plan.sidecar_path)
    except UniadError:
        return False
    return sidecar.cache_key == plan.key and sidecar.engine_sha256 == sha256_file(plan.engine_path)


def equivalent_trtexec(
    onnx_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = "engines",
    precision: str = "fp16",
    min_batch: int = 1,
    opt_batch: int = 1,
    max_batch: int = 8,
    workspace_gib: float = 4.0,
    strongly_typed: bool | None = None,
) -> str:
    """The trtexec line for this ONNX (strongly typed by default for the mixed-precision one)."""
    _check_args(precision, workspace_gib)
    onnx = read_onnx_info(onnx_path)
    if strongly_typed is None:
        strongly_typed = precision == "fp16" and onnx.precision == "fp16"
    profile = resolve_profile(onnx.batch, min_batch, opt_batch, max_batch)
    return trtexec_command(
        onnx_path,
        Path(out_dir) / f"{onnx.name}.{precision}.engine",
        onnx.input_name,
        onnx.input_size,
        profile,
        precision=precision,
        strongly_typed=strongly_typed,
        workspace_gib=workspace_gib,
        timing_cache=Path(out_dir) / "timing.cache",
        dynamic=onnx.batch is None,
    )


def build_engine(
    onnx_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = "engines",
    precision: str = "fp16",
    min_batch: int = 1,
    opt_batch: int = 1,
    max_batch: int = 8,
    workspace_gib: float = 4.0,
    strongly_typed: bool | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> Path:
    """Build (or reuse) `out_dir/<name>.<gpu>.<precision>.engine` with its JSON sidecar.

    Raises `TensorRTUnavailableError` (a `UniadError` carrying the trtexec line) when TensorRT or
    a GPU is missing, and `UniadError` for parser or builder failures. Nothing partial is left.
    """
    report = progress or (lambda message: None)
    _check_args(precision, workspace_gib)
    onnx = read_onnx_info(onnx_path)
    status = detect()
    if not status.usable or status.gpu is None or status.tensorrt_version is None:
        command = equivalent_trtexec(
            onnx_path,
            out_dir,
            precision,
            min_batch,
            opt_batch,
            max_batch,
            workspace_gib,
            strongly_typed,
        )
        raise TensorRTUnavailableError(
            f"cannot build a TensorRT engine: {status.reason}. Equivalent command: {command}",
            trtexec=command,
        )
    trt = import_tensorrt()
    typed = features.resolve_strongly_typed(trt, strongly_typed, precision, onnx.precision)
    plan = plan_build(
        onnx_path,
        onnx,
        out_dir,
        status.tensorrt_version,
        status.gpu,
        precision,
        typed,
        min_batch,
        opt_batch,
        max_batch,
        workspace_gib,
    )
    if not force and is_up_to_date(plan):
        report(f"engine up to date: {plan.engine_path}")
        return plan.engine_path
    mode = "strongly typed" if typed else precision.upper()
    report(
        f"building {mode} TensorRT {plan.trt_version} engine for {plan.gpu.describe()}, batch "
        f"{plan.profile.min_batch}..{plan.profile.max_batch} (minutes on a Jetson)"
    )
    started = time.perf_counter()
    with cuda_api().activate():
        engine_bytes, timing_bytes, pinned = _build(trt, plan, report)
    seconds = time.perf_counter() - started
    _save(plan, engine_bytes, timing_bytes, len(pinned), seconds)
    report(
        f"engine written: {plan.engine_path} ({len(engine_bytes) / 2**20:.1f} MiB, {seconds:.0f} s)"
    )
    return plan.engine_path


def _make_logger(trt: Any) -> Any:
    """A logger that keeps errors, so a failed build says why in its exception."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(msg)

    return _Logger()


def _build(trt: Any, plan: BuildPlan, report: ProgressFn) -> tuple[bytes, bytes, list[str]]:
    logger = _make_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(features.network_flags(trt, plan.strongly_typed))
    parser = trt.OnnxParser(network, logger)
    errors = features.parse_onnx(parser, str(plan.onnx_path))
    if errors:
        raise UniadError(f"TensorRT cannot parse {plan.onnx_path}: " + " | ".join(errors))
    config = builder.create_builder_config()
    features.set_workspace(trt, config, plan.workspace_bytes)
    pinned: list[str] = []
    if plan.precision == "fp16" and not plan.strongly_typed:
        if not builder.platform_has_fast_fp16:
            report("warning: this GPU has no fast FP16; the FP16 engine may not be faster")
        config.set_flag(trt.BuilderFlag.FP16)
        pinned = features.keep_fp32(trt, network)
        flag = features.precision_constraint_flag(trt)
        if pinned and flag is not None:
            config.set_flag(flag)
        report(f"{len(pinned)} layers kept in FP32 (distance head and outputs)")
    _add_profile(builder, config, network, plan)
    _attach_timing_cache(config, plan, report)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        detail = " | ".join(logger.errors[-5:]) or "no error message from TensorRT"
        raise UniadError(f"TensorRT failed to build an engine from {plan.onnx_path}: {detail}")
    timing = bytes(config.get_timing_cache().serialize())
    return bytes(serialized), timing, pinned


def _add_profile(builder: Any, config: Any, network: Any, plan: BuildPlan) -> None:
    """Only a dynamic-batch input needs a profile; a static one builds exactly its shape."""
    tensor = network.get_input(0)
    if all(int(d) >= 0 for d in tensor.shape):
        return
    profile = builder.create_optimization_profile()
    height, width = plan.onnx.input_size
    profile.set_shape(tensor.name, *plan.profile.shapes(height, width))
    config.add_optimization_profile(profile)


def _attach_timing_cache(config: Any, plan: BuildPlan, report: ProgressFn) -> None:
    data = b""
    if plan.timing_cache_path.is_file():
        data = plan.timing_cache_path.read_bytes()
        report(f"reusing timing cache {plan.timing_cache_path}")
    try:
        features.load_timing_cache(config, data)
    except Exception:  # noqa: BLE001 - a damaged cache must not stop the build
        report(f"warning: ignoring unusable timing cache {plan.timing_cache_path}")
        features.load_timing_cache(config, b"")


def _save(plan: BuildPlan, engine: bytes, timing: bytes, pinned: int, seconds: float) -> None:
    """Engine first, then its sidecar: a crash in between leaves no sidecar vouching for it."""
    plan.sidecar_path.unlink(missing_ok=True)
    write_bytes_atomic(plan.engine_path, engine)
    write_bytes_atomic(plan.timing_cache_path, timing)
    EngineSidecar(
        name=plan.onnx.name,
        onnx_path=str(plan.onnx_path),
        onnx_sha256=plan.onnx_sha256,
        engine_sha256=hashlib.sha256(engine).hexdigest(),
        tensorrt_version=plan.trt_version,
        gpu=plan.gpu,
        precision=plan.precision,
        strongly_typed=plan.strongly_typed,
        profile=plan.profile,
        input_name=plan.onnx.input_name,
        input_size=plan.onnx.input_size,
        workspace_bytes=plan.workspace_bytes,
        cache_key=plan.key,
        metadata=plan.onnx.metadata,
        fp32_layers=pinned,
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(seconds, 2),
    ).write(plan.sidecar_path)
