"""Record which TensorRT Python names one bindings wheel has: `python extract_surface.py WHEEL`.

Reads the wheel without installing or importing it (no GPU or CUDA needed). pybind11 registers
every class, method, property and enum member by a C string, so a name exists in a release when
its string is in `tensorrt.so` (whole, or as the tail of a longer string: the linker merges
common suffixes, e.g. 'set_output_type' inside 'reset_output_type'). Properties documented only
by a class's `:ivar NAME:` line (ILayer.precision) are read from that docstring. Names defined
in Python (`nptype`) come from the wheel's `__init__.py`. The candidates are the names
uniad-edge's builder and runtime touch, plus the old ones they must not rely on.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path

CANDIDATES = {
    "module": ["Builder", "Runtime", "OnnxParser", "Logger", "ILogger", "nptype",
               "float32", "float16", "int32", "int8", "uint8", "bool"],
    "NetworkDefinitionCreationFlag": ["EXPLICIT_BATCH", "EXPLICIT_PRECISION", "STRONGLY_TYPED"],
    "BuilderFlag": ["FP16", "TF32", "BF16", "INT8", "OBEY_PRECISION_CONSTRAINTS",
                    "PREFER_PRECISION_CONSTRAINTS", "STRICT_TYPES", "DIRECT_IO"],
    "MemoryPoolType": ["WORKSPACE"],
    "ILogger.Severity": ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"],
    "TensorIOMode": ["INPUT", "OUTPUT"],
    "Builder": ["create_network", "create_builder_config", "create_optimization_profile",
                "build_serialized_network", "platform_has_fast_fp16", "platform_has_tf32"],
    "IBuilderConfig": ["set_flag", "clear_flag", "get_flag", "set_memory_pool_limit",
                       "max_workspace_size", "create_timing_cache", "set_timing_cache",
                       "get_timing_cache", "add_optimization_profile",
                       "set_preview_feature", "get_preview_feature"],
    "PreviewFeature": ["PROFILE_SHARING_0806", "FASTER_DYNAMIC_SHAPES_0805",
                       "DISABLE_EXTERNAL_TACTIC_SOURCES_FOR_CORE_0805",
                       "ALIASED_PLUGIN_IO_10_03", "RUNTIME_ACTIVATION_RESIZE_10_10"],
    "INetworkDefinition": ["num_layers", "get_layer", "num_inputs", "get_input", "num_outputs",
                           "get_output"],
    "ILayer": ["name", "num_inputs", "get_input", "num_outputs", "get_output", "precision",
               "set_output_type", "reset_precision", "precision_is_set"],
    "ITensor": ["name", "shape", "dtype", "is_network_output"],
    "OnnxParser": ["parse", "parse_from_file", "num_errors", "get_error", "supports_operator"],
    "IOptimizationProfile": ["set_shape"],
    "Runtime": ["deserialize_cuda_engine"],
    "ICudaEngine": ["num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_shape",
                    "get_tensor_dtype", "create_execution_context", "num_optimization_profiles",
                    "get_binding_shape"],
    "IExecutionContext": ["set_optimization_profile_async", "active_optimization_profile",
                          "set_input_shape", "set_tensor_address", "execute_async_v3",
                          "set_binding_shape"],
    "ITimingCache": ["serialize"],
}  # fmt: skip
PYTHON_NAMES = {"nptype"}
DOCUMENTED = {
    ("ILayer", "precision"): ("Base class for all layer classes", ":ivar precision:"),
    ("module", "Logger"): ("initial minimum severity of this Logger", "Logger"),
}
"""Names too generic for the string test, found by their class's docstring instead."""


def _strings(data: bytes) -> list[str]:
    return [m.decode() for m in re.findall(rb"[\x20-\x7e\t\n]{3,}", data)]


def surface(wheel: Path) -> dict[str, object]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        so = next(n for n in names if n.endswith("/tensorrt.so"))
        init = next(n for n in names if n.endswith("tensorrt_bindings/__init__.py"))
        strings = _strings(archive.read(so))
        python = archive.read(init).decode()
    version = re.search(r'__version__ = "([^"]+)"', python).group(1)
    exact = set(strings)
    short = [s for s in strings if len(s) < 80]
    result: dict[str, object] = {"version": version, "wheel": wheel.name}
    for owner, candidates in CANDIDATES.items():
        found = []
        for name in candidates:
            if (owner, name) in DOCUMENTED:
                marker, needle = DOCUMENTED[(owner, name)]
                block = next((s for s in strings if marker in s), "")
                present = needle in block
            elif name in PYTHON_NAMES:
                present = re.search(rf"^def {name}\b", python, re.M) is not None
            else:
                present = name in exact or any(s.endswith(name) for s in short)
            if present:
                found.append(name)
        result[owner] = found
    return result


if __name__ == "__main__":
    print(json.dumps(surface(Path(sys.argv[1])), indent=1))
