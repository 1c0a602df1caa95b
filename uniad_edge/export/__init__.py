"""Export: a checkpoint becomes one fused, verified ONNX graph (and a TensorRT engine).

`export(ckpt, format=..., **options)` is the Python API (formats in `formats.FORMATS`, settings
in `options.ExportOptions`). The graph work needs the training stack (torch, onnx, onnxscript),
so names load on first use: the CLI reads `ExportOptions` for `--help` without importing torch,
and the runtime never imports this package.
"""

from importlib import import_module
from typing import Any

_HOMES = {
    "check_graph": "checks",
    "constant_arrays": "checks",
    "graph_problems": "checks",
    "EngineOutcome": "engine",
    "export_engine": "engine",
    "Artifact": "formats",
    "Exported": "formats",
    "fold_constants": "fold",
    "FORMATS": "formats",
    "export": "formats",
    "normalize_format": "formats",
    "head_nodes": "graph",
    "trace_to_onnx": "graph",
    "head_float_types": "half",
    "to_mixed_precision": "half",
    "DEFAULT_OPSET": "options",
    "ExportOptions": "options",
    "TritonOptions": "options",
    "ExportResult": "pipeline",
    "default_name": "pipeline",
    "export_onnx": "pipeline",
    "Parity": "verify",
    "check_half_drift": "verify",
    "check_parity": "verify",
    "sample_frames": "verify",
    "export_triton": "triton_repo",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'uniad_edge.export' has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
