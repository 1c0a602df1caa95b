"""TensorRT 8.6 vs 10.x differences, decided by what the module offers, never by its version.

Every function takes the `tensorrt` module (or objects it made) as an argument, so the choices
can be tested with small stand-ins on machines without TensorRT.
"""

from __future__ import annotations

from typing import Any

from ..errors import UniadError

DISTANCE_HEAD_PREFIX = "distance_head"
"""ONNX node-name prefix of the distance head; the exporter names that subgraph's nodes so."""


def supports_strongly_typed(trt: Any) -> bool:
    """STRONGLY_TYPED networks exist from TensorRT 9/10 on (absent in 8.6)."""
    return hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")


def resolve_strongly_typed(
    trt: Any, requested: bool | None, precision: str, onnx_precision: str
) -> bool:
    """Strongly typed when asked, or by default for the mixed-precision ONNX wanted in FP16.

    That ONNX already says which tensors are float16; a strongly typed network follows it
    exactly instead of letting the builder pick per layer.
    """
    available = supports_strongly_typed(trt)
    if requested is None:
        return available and precision == "fp16" and onnx_precision == "fp16"
    if requested and not available:
        raise UniadError(
            "a strongly typed engine needs TensorRT 10 or newer; this TensorRT has no "
            "STRONGLY_TYPED network flag: build without strongly_typed (FP16 builder flag)"
        )
    return bool(requested)


def network_flags(trt: Any, strongly_typed: bool) -> int:
    """EXPLICIT_BATCH wherever it exists (required in 8.6, ignored in 10), plus typing."""
    flags = 0
    creation = trt.NetworkDefinitionCreationFlag
    if hasattr(creation, "EXPLICIT_BATCH"):
        flags |= 1 << int(creation.EXPLICIT_BATCH)
    if strongly_typed:
        flags |= 1 << int(creation.STRONGLY_TYPED)
    return flags


def set_workspace(trt: Any, config: Any, nbytes: int) -> str:
    """Memory-pool API (8.4+, the only one in 10) or the old `max_workspace_size` attribute."""
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(nbytes))
        return "set_memory_pool_limit"
    config.max_workspace_size = int(nbytes)
    return "max_workspace_size"


def precision_constraint_flag(trt: Any) -> Any | None:
    """OBEY (8.2+) so constrained layers really stay FP32, else PREFER, else STRICT_TYPES."""
    for name in ("OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "STRICT_TYPES"):
        if hasattr(trt.BuilderFlag, name):
            return getattr(trt.BuilderFlag, name)
    return None


def in_distance_head(layer_name: str, prefix: str = DISTANCE_HEAD_PREFIX) -> bool:
    """Parser layer names derive from ONNX node names, e.g. '/distance_head/ReduceSum'."""
    name = layer_name.lstrip("/")
    return name == prefix or (name.startswith(prefix) and name[len(prefix)] in "/._:")


def keep_fp32(trt: Any, network: Any, prefix: str = DISTANCE_HEAD_PREFIX) -> list[str]:
    """Pin the distance head and every layer producing a network output to FP32.

    In FP16 the squared-difference sum over 720 channels overflows 65504; only floating-point
    layers are touched (shape and index layers must keep their integer types). Returns the names.
    """
    floats = {trt.float32, trt.float16}
    pinned = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        outputs = [layer.get_output(i) for i in range(layer.num_outputs)]
        if not any(t.dtype in floats for t in outputs):
            continue
        if not (in_distance_head(layer.name, prefix) or any(t.is_network_output for t in outputs)):
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
    return pinned


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
    """Create the builder's timing cache from saved bytes (empty: a fresh cache) and attach it."""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


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
