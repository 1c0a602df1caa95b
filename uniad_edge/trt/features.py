"""TensorRT 8.6, 10.x and 11.x differences, decided by what the module offers.

Every function takes the `tensorrt` module (or objects it made) as an argument, so the choices
are tested against fake modules with exactly the attribute surface of each release (recorded
from the real bindings in tests/data/trt_surfaces/). What changes between them:
8.6: FP16 builder flag + per-layer precision constraints, EXPLICIT_BATCH required, no strongly
typed networks; a second execution context must select its optimization profile, and may share
profile 0 with the first only in an engine built with PreviewFeature.PROFILE_SHARING_0806.
10.x: both the FP16 flag and STRONGLY_TYPED networks exist; EXPLICIT_BATCH is ignored.
11.x: no FP16 flag, no precision constraints, no ILayer.precision/set_output_type, no
EXPLICIT_BATCH: every network is strongly typed, so FP16 comes only from a float16 ONNX.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ..errors import UniadError
from .unavailable import INSTALL_HINT, TensorRTUnavailableError

DISTANCE_HEAD_PREFIX = "distance_head"
"""ONNX node-name prefix of the distance head; the exporter names that subgraph's nodes so."""


SUPPORTED = "8.6, 10.x or 11.x"
REQUIRED = {
    "": ("Builder", "Runtime", "OnnxParser", "Logger", "ILogger"),
    "IBuilderConfig": ("set_memory_pool_limit", "create_timing_cache", "set_timing_cache"),
    "ICudaEngine": ("num_io_tensors", "get_tensor_name", "create_execution_context"),
    "IExecutionContext": ("set_input_shape", "set_tensor_address", "execute_async_v3"),
}
"""Names every path uses; a TensorRT without any of them cannot be driven here."""


def version_tuple(version: str) -> tuple[int, int]:
    """'10.3.0.26' -> (10, 3)."""
    numbers = [int(n) for n in re.findall(r"\d+", version)[:2]] + [0, 0]
    return numbers[0], numbers[1]


def unsupported_reason(trt: Any) -> str | None:
    """None when this TensorRT can be driven, else one line naming its version and the fix."""
    version = str(getattr(trt, "__version__", "unknown"))
    major, minor = version_tuple(version)
    missing = []
    for owner, names in REQUIRED.items():
        target = getattr(trt, owner, None) if owner else trt
        missing += [f"{owner}.{n}" if owner else n for n in names if not hasattr(target, n)]
    known = (major, minor) >= (8, 6) and major in (8, 10, 11)
    if known and not missing:
        return None
    why = f"lacks {', '.join(missing[:3])}" if missing else "is not a version it knows"
    return (
        f"TensorRT {version} {why}; uniad-edge drives TensorRT {SUPPORTED}: {INSTALL_HINT} "
        "(JetPack 6.0 ships 8.6, 6.1/6.2 ship 10.3)"
    )


def has_fp16_flag(trt: Any) -> bool:
    """The FP16 builder flag exists up to 10.x; TensorRT 11 removed it (strongly typed only)."""
    return hasattr(trt.BuilderFlag, "FP16")


def supports_strongly_typed(trt: Any) -> bool:
    """STRONGLY_TYPED networks exist from TensorRT 10 on (absent in 8.6, always on in 11)."""
    return hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED") or not has_fp16_flag(trt)


@dataclass(frozen=True)
class BuildMode:
    """How one engine is built: network typing, builder flags to set and clear, FP32 pinning."""

    strongly_typed: bool
    set_flags: tuple[str, ...] = ()
    clear_flags: tuple[str, ...] = ()
    pin_fp32: bool = False

    def describe(self, precision: str) -> str:
        return "strongly typed" if self.strongly_typed else precision.upper()


def choose_build_mode(
    trt: Any, precision: str, onnx_precision: str, strongly_typed: bool | None = None
) -> BuildMode:
    """The build for `precision` from an ONNX of `onnx_precision` on this TensorRT.

    FP16 engines: from the mixed-precision ONNX (`--half`, float32 distance head) as a strongly
    typed network wherever that exists (10.x, 11.x); from the FP16 flag with the distance head
    pinned to FP32 on 8.6 (and on 10.x for a float32 ONNX). TensorRT 11 has no FP16 flag, so a
    float32 ONNX gives no FP16 engine there. FP32 engines clear TF32, so fp32 means fp32.
    """
    if precision == "int8" or onnx_precision == "int8":
        return _int8_mode(trt, precision, onnx_precision, strongly_typed)
    typed = resolve_strongly_typed(trt, strongly_typed, precision, onnx_precision)
    if precision == "fp32":
        if onnx_precision == "fp16":
            raise UniadError(
                "an fp32 engine needs the float32 ONNX, this one is the --half graph; "
                "re-export without --half"
            )
        clear = tuple(f for f in ("TF32",) if hasattr(trt.BuilderFlag, f))
        return BuildMode(strongly_typed=typed, clear_flags=clear)
    if typed and (onnx_precision == "fp16" or strongly_typed):
        return BuildMode(strongly_typed=True)
    if not has_fp16_flag(trt):
        raise TensorRTUnavailableError(
            f"TensorRT {getattr(trt, '__version__', '?')} builds FP16 engines only from the "
            "mixed-precision ONNX (it has no FP16 builder flag): re-export with "
            "`uniad-edge export --half`"
        )
    flags = ("FP16",) + tuple(f for f in (constraint_flag_name(trt),) if f)
    return BuildMode(strongly_typed=False, set_flags=flags, pin_fp32=True)


def check_int8_pairing(precision: str, onnx_precision: str) -> None:
    """An INT8 engine comes from the Q/DQ graph only (no calibrator), and that graph builds only
    as INT8 (a weakly typed network without the INT8 flag refuses its Q/DQ layers)."""
    if (precision == "int8" or onnx_precision == "int8") and precision != onnx_precision:
        raise UniadError(
            "an INT8 engine is built from the INT8 (Q/DQ) graph and that graph only as INT8: "
            "export --precision int8 and build it with precision int8"
        )


def _int8_mode(
    trt: Any, precision: str, onnx_precision: str, strongly_typed: bool | None
) -> BuildMode:
    """INT8 engines come only from the Q/DQ graph (explicit quantization, no calibrator): a
    strongly typed network on 10.x/11.x (the Q/DQ pairs say where int8 runs, the rest keeps
    the graph's float32); on 8.6 (or 10.x asked for weakly typed) the INT8 and FP16 flags with
    the float32 distance head pinned, so the float layers between the pairs run in FP16."""
    check_int8_pairing(precision, onnx_precision)
    typed = supports_strongly_typed(trt) if strongly_typed is None else strongly_typed
    if typed or not has_fp16_flag(trt):
        if not supports_strongly_typed(trt):
            raise UniadError(
                "a strongly typed engine needs TensorRT 10 or newer; build the INT8 graph "
                "without strongly_typed on TensorRT 8.6 (INT8 and FP16 flags)"
            )
        return BuildMode(strongly_typed=True)
    flags = ("INT8", "FP16") + tuple(f for f in (constraint_flag_name(trt),) if f)
    return BuildMode(strongly_typed=False, set_flags=flags, pin_fp32=True)


def resolve_strongly_typed(
    trt: Any, requested: bool | None, precision: str, onnx_precision: str
) -> bool:
    """Strongly typed when asked, or by default for the mixed-precision ONNX wanted in FP16.

    That ONNX already says which tensors are float16; a strongly typed network follows it
    exactly instead of letting the builder pick per layer.
    """
    available = supports_strongly_typed(trt)
    if not has_fp16_flag(trt):
        return True  # TensorRT 11: every network is strongly typed
    if requested is None:
        return available and precision == "fp16" and onnx_precision == "fp16"
    if requested and not available:
        raise UniadError(
            "a strongly typed engine needs TensorRT 10 or newer; this TensorRT has no "
            "STRONGLY_TYPED network flag: build without strongly_typed (FP16 builder flag)"
        )
    return bool(requested)


def network_flags(trt: Any, strongly_typed: bool) -> int:
    """EXPLICIT_BATCH wherever it exists (required in 8.6, ignored in 10, gone in 11), plus
    STRONGLY_TYPED when asked and it exists (11 keeps it as an ignored no-op)."""
    flags = 0
    creation = trt.NetworkDefinitionCreationFlag
    if hasattr(creation, "EXPLICIT_BATCH"):
        flags |= 1 << int(creation.EXPLICIT_BATCH)
    if strongly_typed and hasattr(creation, "STRONGLY_TYPED"):
        flags |= 1 << int(creation.STRONGLY_TYPED)
    return flags


def set_workspace(trt: Any, config: Any, nbytes: int) -> str:
    """Memory-pool API (8.4+, the only one in 10) or the old `max_workspace_size` attribute."""
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(nbytes))
        return "set_memory_pool_limit"
    config.max_workspace_size = int(nbytes)
    return "max_workspace_size"


def constraint_flag_name(trt: Any) -> str | None:
    """OBEY (8.2+) so constrained layers really stay FP32, else PREFER, else STRICT_TYPES."""
    for name in ("OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "STRICT_TYPES"):
        if hasattr(trt.BuilderFlag, name):
            return name
    return None


def precision_constraint_flag(trt: Any) -> Any | None:
    """The BuilderFlag member named by `constraint_flag_name`, or None."""
    name = constraint_flag_name(trt)
    return getattr(trt.BuilderFlag, name) if name else None


def apply_flags(trt: Any, config: Any, mode: BuildMode) -> None:
    """Set and clear the mode's builder flags by name."""
    for name in mode.set_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    for name in mode.clear_flags:
        config.clear_flag(getattr(trt.BuilderFlag, name))


PROFILE_SHARING = "PROFILE_SHARING_0806"
TRTEXEC_PROFILE_SHARING = "--preview=+profileSharing0806"
"""TensorRT 8.6 lets two execution contexts (worker threads) use optimization profile 0 only
with this preview feature, off by default (NvInfer.h 8.6.1); from 10.0 it is always on."""


def needs_profile_sharing(trt_version: str) -> bool:
    """Only 8.x engines need the preview feature for a second context on profile 0."""
    return version_tuple(trt_version)[0] == 8


def enable_profile_sharing(trt: Any, config: Any) -> bool:
    """Set PROFILE_SHARING_0806 on an 8.x builder config where that name exists."""
    if not needs_profile_sharing(str(getattr(trt, "__version__", ""))):
        return False
    feature = getattr(getattr(trt, "PreviewFeature", None), PROFILE_SHARING, None)
    if feature is None or not hasattr(config, "set_preview_feature"):
        return False
    config.set_preview_feature(feature, True)
    return True


@dataclass(frozen=True)
class Pin:
    """One ONNX node an FP16-flag build keeps FP32: its name, op type and output tensors."""

    node: str
    op: str = ""
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class PinReport:
    """How the requested pins landed: layers set to FP32, and the pins no layer matched."""

    requested: int
    layers: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def matched(self) -> int:
        return self.requested - len(self.missing)

    def describe(self) -> str:
        return f"{self.matched}/{self.requested} FP32 pins matched, {len(self.layers)} layers FP32"


def _named_after(layer_name: str, node: str) -> bool:
    """registerLayer names a layer after its node, `node_N` when the name was taken."""
    if layer_name == node:
        return True
    head, _, tail = layer_name.rpartition("_")
    return head == node and tail.isdigit()


def keep_fp32(trt: Any, network: Any, pins: Collection[Pin]) -> PinReport:
    """Pin to FP32 every layer that produces or consumes a pinned node's output tensor or is
    named after a pinned node, and every layer producing a network output.

    onnx-tensorrt names every node's output tensor after its ONNX output in every release, but
    not every layer after its node (8.6's LayerNormalization keeps TensorRT's default name, the
    reshape after a Softmax and broadcast shuffles are unnamed, a taken name gets `_N`), so
    tensors are what pins match. Only floating-point layers are touched (shape and index
    layers keep their integer types). In FP16 the squared-difference sum over 720 channels
    overflows 65504: a pin that matches nothing is reported in `missing`, never dropped.
    """
    by_tensor = {name: pin.node for pin in pins for name in pin.outputs}
    nodes = {pin.node for pin in pins}
    floats = {trt.float32, trt.float16}
    matched: set[str] = set()
    pinned = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        outputs = [layer.get_output(i) for i in range(layer.num_outputs)]
        inputs = [layer.get_input(i) for i in range(layer.num_inputs)]
        hits = {
            by_tensor[t.name] for t in [*outputs, *inputs] if t is not None and t.name in by_tensor
        }
        hits |= {node for node in nodes if _named_after(layer.name, node)}
        matched |= hits
        if not (hits or any(t.is_network_output for t in outputs)):
            continue
        if not any(t.dtype in floats for t in outputs):
            continue
        layer.precision = trt.float32
        for i, tensor in enumerate(outputs):
            if tensor.dtype in floats:
                layer.set_output_type(i, trt.float32)
        pinned.append(layer.name)
    for index in range(network.num_outputs):
        tensor = network.get_output(index)
        if tensor.dtype in floats:
            tensor.dtype = trt.float32
    missing = tuple(pin.node for pin in pins if pin.node not in matched)
    return PinReport(len(pins), tuple(pinned), missing)


def parse_onnx(parser: Any, onnx_path: str) -> list[str]:
    """Parse from the file when possible (resolves external weights); return all parser errors."""
    if hasattr(parser, "parse_from_file"):
        ok = parser.parse_from_file(onnx_path)
    else:
        with open(onnx_path, "rb") as handle:
            ok = parser.parse(handle.read())
    errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
    if not ok and not errors:
        errors.append("the ONNX parser failed without a message")
    return [] if ok else errors


def load_timing_cache(config: Any, data: bytes) -> Any:
    """Create the builder's timing cache from saved bytes (empty: a fresh cache) and attach it.

    `set_timing_cache` reports a rejected cache (another TensorRT or GPU) by returning False,
    not by raising; that is turned into a `ValueError` so the caller can start a fresh one.
    """
    cache = config.create_timing_cache(data)
    if cache is None or config.set_timing_cache(cache, ignore_mismatch=False) is False:
        raise ValueError("TensorRT rejected the timing cache")
    return cache


def select_profile(context: Any, stream_handle: int, profiles: int) -> None:
    """Select optimization profile 0 on a new execution context before its first execute.

    TensorRT 8.6 gives only the first context of an engine profile 0 implicitly; a second one
    (a second worker thread) has none until it selects it, and its execute fails.
    """
    if profiles < 1:
        return
    if not context.set_optimization_profile_async(0, stream_handle):
        raise UniadError("TensorRT refused optimization profile 0 for a new execution context")


def io_tensors(trt: Any, engine: Any) -> tuple[list[str], list[str]]:
    """(input names, output names) through the named-tensor API that 8.6 and 10 share."""
    if not hasattr(engine, "num_io_tensors"):
        raise UniadError(
            "this TensorRT lacks the named-tensor API (num_io_tensors); TensorRT 8.6 or newer "
            "is required"
        )
    inputs, outputs = [], []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        (inputs if is_input else outputs).append(name)
    return inputs, outputs
