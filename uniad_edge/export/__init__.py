"""Export: a checkpoint becomes one fused, verified ONNX graph (and a TensorRT engine).

Needs the training stack (torch, onnx, onnxscript); the runtime never imports this package.
"""

from .checks import check_graph, constant_arrays, graph_problems
from .engine import EngineOutcome, export_engine, normalize_format
from .fold import fold_constants
from .graph import DEFAULT_OPSET, head_nodes, trace_to_onnx
from .half import head_float_types, to_mixed_precision
from .pipeline import ExportResult, default_name, export_onnx
from .verify import Parity, check_half_drift, check_parity, sample_frames

__all__ = [
    "DEFAULT_OPSET",
    "EngineOutcome",
    "ExportResult",
    "Parity",
    "check_graph",
    "check_half_drift",
    "check_parity",
    "constant_arrays",
    "default_name",
    "export_engine",
    "export_onnx",
    "fold_constants",
    "graph_problems",
    "head_float_types",
    "head_nodes",
    "normalize_format",
    "sample_frames",
    "to_mixed_precision",
    "trace_to_onnx",
]
