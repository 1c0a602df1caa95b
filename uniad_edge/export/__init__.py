"""Export: a checkpoint becomes one fused, verified ONNX graph (and a TensorRT engine).

`export(ckpt, format=..., **options)` is the Python API (formats in `formats.FORMATS`, settings
in `options.ExportOptions`). The graph work needs the training stack (torch, onnx, onnxscript),
so names load on first use: the CLI reads `ExportOptions` for `--help` without importing torch,
and the runtime never imports this package. `__getattr__` imports each name's home module with
a plain local import, so linters and import graphs see every edge.
"""

from __future__ import annotations

from typing import Any

_OUTPUT = ("FormatOutput",)
_CHECKS = ("check_graph", "constant_arrays", "graph_problems")
_ENGINE = ("EngineOutcome", "export_engine")
_FOLD = ("fold_constants",)
_FORMATS = ("Exported", "FORMATS", "export", "normalize_format")
_GRAPH = ("head_nodes", "trace_to_onnx")
_HALF = ("head_float_types", "to_mixed_precision")
_OPTIONS = ("DEFAULT_OPSET", "ExportOptions", "TritonOptions")
_PIPELINE = ("ExportResult", "default_name", "export_onnx")
_TRITON_REPO = ("export_triton",)
_VERIFY = ("Parity", "check_half_drift", "check_parity", "sample_frames")
__all__ = sorted(
    (*_OUTPUT, *_CHECKS, *_ENGINE, *_FOLD, *_FORMATS, *_GRAPH, *_HALF, *_OPTIONS, *_PIPELINE)
    + (*_TRITON_REPO, *_VERIFY)
)


def __getattr__(name: str) -> Any:
    if name in _OUTPUT:
        from . import output as home
    elif name in _CHECKS:
        from . import checks as home
    elif name in _ENGINE:
        from . import engine as home
    elif name in _FOLD:
        from . import fold as home
    elif name in _FORMATS:
        from . import formats as home
    elif name in _GRAPH:
        from . import graph as home
    elif name in _HALF:
        from . import half as home
    elif name in _OPTIONS:
        from . import options as home
    elif name in _PIPELINE:
        from . import pipeline as home
    elif name in _TRITON_REPO:
        from . import triton_repo as home
    elif name in _VERIFY:
        from . import verify as home
    else:
        raise AttributeError(f"module 'uniad_edge.export' has no attribute {name!r}")
    return getattr(home, name)
