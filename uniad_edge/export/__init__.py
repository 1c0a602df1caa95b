"""Export: a checkpoint becomes one fused, verified ONNX graph (and a TensorRT engine).

`export(ckpt, format=..., **options)` is the Python API (formats in `formats.FORMATS`, settings
in `options.ExportOptions`). The graph work needs the training stack (torch, onnx, onnxscript),
so names load on first use: the CLI reads `ExportOptions` for `--help` without importing torch,
and the runtime never imports this package. Each home module is imported by a small function
below (a local import that linters and import graphs see), keyed by the names it provides.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any


def _artifact() -> ModuleType:
    from . import artifact

    return artifact


def _checks() -> ModuleType:
    from . import checks

    return checks


def _engine() -> ModuleType:
    from . import engine

    return engine


def _fold() -> ModuleType:
    from . import fold

    return fold


def _formats() -> ModuleType:
    from . import formats

    return formats


def _graph() -> ModuleType:
    from . import graph

    return graph


def _half() -> ModuleType:
    from . import half

    return half


def _options() -> ModuleType:
    from . import options

    return options


def _pipeline() -> ModuleType:
    from . import pipeline

    return pipeline


def _triton_repo() -> ModuleType:
    from . import triton_repo

    return triton_repo


def _verify() -> ModuleType:
    from . import verify

    return verify


_HOMES: dict[str, Callable[[], ModuleType]] = {
    "Artifact": _artifact,
    "check_graph": _checks,
    "constant_arrays": _checks,
    "graph_problems": _checks,
    "EngineOutcome": _engine,
    "export_engine": _engine,
    "fold_constants": _fold,
    "Exported": _formats,
    "FORMATS": _formats,
    "export": _formats,
    "normalize_format": _formats,
    "head_nodes": _graph,
    "trace_to_onnx": _graph,
    "head_float_types": _half,
    "to_mixed_precision": _half,
    "DEFAULT_OPSET": _options,
    "ExportOptions": _options,
    "TritonOptions": _options,
    "ExportResult": _pipeline,
    "default_name": _pipeline,
    "export_onnx": _pipeline,
    "export_triton": _triton_repo,
    "Parity": _verify,
    "check_half_drift": _verify,
    "check_parity": _verify,
    "sample_frames": _verify,
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'uniad_edge.export' has no attribute {name!r}")
    return getattr(_HOMES[name](), name)
