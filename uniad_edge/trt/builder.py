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
from ..metadata import (
    DEFAULT_ENGINE_DIR,
    DEFAULT_MAX_BATCH,
    DEFAULT_WORKSPACE_GIB,
    GIB,
    PRECISIONS,
)
from . import features
from .environment import (
    TensorRTUnavailableError,
    cuda_api,
    detect,
    import_tensorrt,
    trtexec_command,
)
from .onnx_info import OnnxInfo, read_onnx_info
from .parser_contract import CONTRACT
from .parser_ops import max_opset
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
    max_batch: int = DEFAULT_MAX_BATCH,
    workspace_gib: float = DEFAULT_WORKSPACE_GIB,
) -> BuildPlan:
    """Decide the profile, paths and cache key (pure: no TensorRT, no GPU)."""
    _check_args(precision, workspace_gib)
    features.check_int8_pairing(precision, onnx.precision)
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


TRTEXEC_TARGETS = ("8.6", "10.x", "11.x")


def trtexec_target(version: str) -> str:
    """The `TRTEXEC_TARGETS` family of TensorRT `version` ('10.3.0' -> '10.x')."""
    major = version.split(".")[0]
    family = {"8": "8.6", "10": "10.x", "11": "11.x"}.get(major)
    if family is None:
        raise UniadError(f"TensorRT {version} is not one of {', '.join(TRTEXEC_TARGETS)}")
    return family


def trtexec_modes(precision: str, onnx_precision: str) -> dict[str, str | None]:
    """The trtexec build mode per TensorRT family (None: that family cannot build it)."""
    if precision == "int8" or onnx_precision == "int8":
        if precision != onnx_precision:  # an INT8 engine only from the Q/DQ graph
            return dict.fromkeys(TRTEXEC_TARGETS)
        return {"8.6": "int8-pinned", "10.x": "strongly-typed", "11.x": "strongly-typed"}
    if precision == "fp32":
        mode = None if onnx_precision == "fp16" else "fp32"
        return dict.fromkeys(TRTEXEC_TARGETS, mode)
    if onnx_precision == "fp16":
        return {"8.6": "fp16-pinned", "10.x": "strongly-typed", "11.x": "strongly-typed"}
    return {"8.6": "fp16-pinned", "10.x": "fp16-pinned", "11.x": None}


def trtexec_lines(
    onnx_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = DEFAULT_ENGINE_DIR,
    precision: str = "fp16",
    min_batch: int = 1,
    opt_batch: int = 1,
    max_batch: int = DEFAULT_MAX_BATCH,
    workspace_gib: float = DEFAULT_WORKSPACE_GIB,
) -> dict[str, str | None]:
    """The trtexec line per TensorRT family ('8.6', '10.x', '11.x'); None where it cannot."""
    _check_args(precision, workspace_gib)
    onnx = read_onnx_info(onnx_path)
    profile = resolve_profile(onnx.batch, min_batch, opt_batch, max_batch)
    lines: dict[str, str | None] = {}
    for target, mode in trtexec_modes(precision, onnx.precision).items():
        lines[target] = None
        if mode in ("fp16-pinned", "int8-pinned") and unnamed_pins(onnx.pins, target):
            continue  # trtexec pins layers by name only: a pin it cannot name would run FP16
        if mode is not None:
            lines[target] = trtexec_command(
                onnx_path,
                _trtexec_engine(out_dir, onnx.name, precision),
                onnx.input_name,
                onnx.input_size,
                profile,
                mode=mode,
                head_layers=onnx.fp32_layers,
                preview=(features.TRTEXEC_PROFILE_SHARING,) if target == "8.6" else (),
                workspace_gib=workspace_gib,
                timing_cache=Path(out_dir) / "timing.cache",
                dynamic=onnx.batch is None,
            )
    return lines


def unnamed_pins(pins: tuple[features.Pin, ...], target: str) -> list[str]:
    """Pinned nodes whose layer that TensorRT's parser leaves unnamed (8.6: LayerNormalization),
    so no `--layerPrecisions` entry can reach them (trt/parser_contract.py)."""
    release = "8.6" if target == "8.6" else "10.x"
    rows = CONTRACT[release]
    return [pin.node for pin in pins if pin.op in rows and not rows[pin.op].named]


def _trtexec_engine(out_dir: str | os.PathLike[str], name: str, precision: str) -> Path:
    """Where the printed trtexec line writes its engine (and `adopt-engine` finds it)."""
    return Path(out_dir) / f"{name}.{precision}.engine"


def equivalent_trtexec(
    onnx_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = DEFAULT_ENGINE_DIR,
    precision: str = "fp16",
    min_batch: int = 1,
    opt_batch: int = 1,
    max_batch: int = DEFAULT_MAX_BATCH,
    workspace_gib: float = DEFAULT_WORKSPACE_GIB,
) -> str:
    """One line: the trtexec command per TensorRT family, then how to register the engine.

    trtexec writes no sidecar, and `run` uses only engines with one, so the line ends with the
    `adopt-engine` command that writes it, carrying the precision, batch range and workspace
    the trtexec commands used (a sidecar that named another profile would disagree with its
    engine).
    """
    limits = dict(
        min_batch=min_batch, opt_batch=opt_batch, max_batch=max_batch, workspace_gib=workspace_gib
    )
    lines = trtexec_lines(onnx_path, out_dir, precision, **limits)
    seen: dict[str, list[str]] = {}
    for target, line in lines.items():
        if line is not None:
            seen.setdefault(line, []).append(target)
    parts = [f"TensorRT {'/'.join(targets)}: {line}" for line, targets in seen.items()]
    missing = [t for t, line in lines.items() if line is None]
    if missing:
        parts.append(f"TensorRT {'/'.join(missing)}: re-export with --half first")
    engine = _trtexec_engine(out_dir, read_onnx_info(onnx_path).name, precision)
    adopt = (
        f"uniad-edge adopt-engine {engine} --onnx {onnx_path} --precision {precision} "
        f"--min-batch {min_batch} --opt-batch {opt_batch} --max-batch {max_batch} "
        f"--workspace {workspace_gib:g}"
    )
    return "; ".join(parts) + f"; then register the engine with `{adopt}`"


def build_engine(
    onnx_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = DEFAULT_ENGINE_DIR,
    precision: str = "fp16",
    min_batch: int = 1,
    opt_batch: int = 1,
    max_batch: int = DEFAULT_MAX_BATCH,
    workspace_gib: float = DEFAULT_WORKSPACE_GIB,
    strongly_typed: bool | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
    verbose: bool = False,
) -> Path:
    """Build (or reuse) `out_dir/<name>.<gpu>.<precision>.engine` with its JSON sidecar.

    Raises `TensorRTUnavailableError` (a `UniadError` carrying the trtexec line) when TensorRT or
    a GPU is missing or this TensorRT cannot build this ONNX (opset, FP16 on 11 without --half),
    and `UniadError` for parser or builder failures. Nothing partial is left. TensorRT's
    warnings go to `progress`; `verbose` passes its info and verbose messages too.
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
            min_batch=min_batch,
            opt_batch=opt_batch,
            max_batch=max_batch,
            workspace_gib=workspace_gib,
        )
        raise TensorRTUnavailableError(
            f"cannot build a TensorRT engine: {status.reason}. Equivalent commands: {command}",
            trtexec=command,
        )
    _check_opset(onnx, onnx_path, status.tensorrt_version)
    trt = import_tensorrt()
    mode = features.choose_build_mode(trt, precision, onnx.precision, strongly_typed)
    typed = mode.strongly_typed
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
    report(
        f"building {mode.describe(precision)} TensorRT {plan.trt_version} engine for "
        f"{plan.gpu.describe()}, batch {plan.profile.min_batch}..{plan.profile.max_batch} "
        "(minutes on a Jetson)"
    )
    started = time.perf_counter()
    with cuda_api().activate():
        engine_bytes, timing_bytes, pins = _build(trt, plan, mode, report, verbose)
    seconds = time.perf_counter() - started
    _save(plan, engine_bytes, timing_bytes, pins, seconds)
    report(
        f"engine written: {plan.engine_path} ({len(engine_bytes) / 2**20:.1f} MiB, {seconds:.0f} s)"
    )
    return plan.engine_path


def _check_opset(onnx: OnnxInfo, path: str | os.PathLike[str], trt_version: str) -> None:
    """Refuse an ONNX newer than this TensorRT's parser before it fails (or, on 8.6, silently
    reduces over every axis: its reductions ignore opset 18's axes input)."""
    newest = max_opset(trt_version)
    if onnx.opset > newest:
        raise TensorRTUnavailableError(
            f"TensorRT {trt_version} parses ONNX opset {newest} at most and {path} is opset "
            f"{onnx.opset}: re-export with `uniad-edge export --opset 17`"
        )


def _make_logger(trt: Any, report: ProgressFn, verbose: bool) -> Any:
    """A logger that keeps errors (so a failed build says why) and passes warnings through."""
    severity = trt.ILogger.Severity
    errors = (severity.ERROR, severity.INTERNAL_ERROR)

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, level: Any, msg: str) -> None:
            if level in errors:
                self.errors.append(msg)
            if level in errors or level == severity.WARNING or verbose:
                report(f"TensorRT {getattr(level, 'name', level)}: {msg}")

    return _Logger()


def _build(
    trt: Any, plan: BuildPlan, mode: features.BuildMode, report: ProgressFn, verbose: bool
) -> tuple[bytes, bytes, features.PinReport | None]:
    logger = _make_logger(trt, report, verbose)
    builder = trt.Builder(logger)
    network = builder.create_network(features.network_flags(trt, mode.strongly_typed))
    parser = trt.OnnxParser(network, logger)
    errors = features.parse_onnx(parser, str(plan.onnx_path))
    if errors:
        raise UniadError(f"TensorRT cannot parse {plan.onnx_path}: " + " | ".join(errors))
    config = builder.create_builder_config()
    features.set_workspace(trt, config, plan.workspace_bytes)
    features.apply_flags(trt, config, mode)
    if features.enable_profile_sharing(trt, config):
        report("profile sharing on (PROFILE_SHARING_0806): worker threads share profile 0")
    pins = None
    if mode.pin_fp32:
        if not builder.platform_has_fast_fp16:
            report("warning: this GPU has no fast FP16; the FP16 engine may not be faster")
        if plan.onnx.metadata.get("fp32_nodes") is None:
            report(
                "warning: this ONNX has no float16 range contract (exported without "
                "verification); re-export it so layers near float16's limit stay FP32"
            )
        pins = features.keep_fp32(trt, network, plan.onnx.pins)
        if pins.missing or not pins.requested:
            raise UniadError(
                f"{plan.onnx_path}: {pins.describe()}; FP32 pin {', '.join(pins.missing[:3])} "
                "matches no TensorRT layer, so the FP16 engine would run it in FP16: re-export "
                "the ONNX with this uniad-edge, or build with --precision fp32"
                if pins.missing
                else f"{plan.onnx_path} names no FP32 pins (no distance head in its metadata); "
                "re-export it with this uniad-edge"
            )
        ranged = len(plan.onnx.range_pinned)
        report(f"{pins.describe()} (distance head, outputs, {ranged} by range)")
    _add_profile(builder, config, network, plan)
    _attach_timing_cache(config, plan, report)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        detail = " | ".join(logger.errors[-5:]) or "no error message from TensorRT"
        raise UniadError(f"TensorRT failed to build an engine from {plan.onnx_path}: {detail}")
    timing = bytes(config.get_timing_cache().serialize())
    return bytes(serialized), timing, pins


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
    except Exception:  # noqa: BLE001 - a damaged or foreign cache must not stop the build
        report(f"warning: ignoring unusable timing cache {plan.timing_cache_path}")
        features.load_timing_cache(config, b"")


def _save(
    plan: BuildPlan,
    engine: bytes,
    timing: bytes,
    pins: features.PinReport | None,
    seconds: float,
) -> None:
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
        fp32_layers=len(pins.layers) if pins else 0,
        fp32_pins_requested=pins.requested if pins else 0,
        fp32_pins_matched=pins.matched if pins else 0,
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(seconds, 2),
    ).write(plan.sidecar_path)
