"""The TensorRT stage of `export`: build the FP16 engine where TensorRT and a GPU are usable.

`auto` never fails for want of TensorRT (the ONNX is the portable artifact); `engine` does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UniadError
from .options import ExportOptions
from .output import FormatOutput

if TYPE_CHECKING:
    from .pipeline import ExportResult


@dataclass(frozen=True)
class EngineOutcome:
    """The engine written, or why none was (with the trtexec line to build one elsewhere)."""

    path: Path | None
    note: str = ""
    trtexec: str = ""


def tensorrt_unusable() -> str | None:
    """Why TensorRT cannot build an engine here (the probe's reason), or None."""
    from ..trt import detect

    status = detect()
    return None if status.usable else status.reason


def export_engine(
    onnx_path: str | os.PathLike[str], required: bool, options: ExportOptions
) -> EngineOutcome:
    """Build the engine (`options.engine_precision`, FP16 by default); without a TensorRT that
    can build it, raise when `required`, else say how to get one (the trtexec lines and the
    `adopt-engine` step)."""
    from ..trt import TensorRTUnavailableError, build_engine

    if options.max_batch < 1:
        raise UniadError(f"--max-batch {options.max_batch} must be at least 1")
    try:
        path = build_engine(
            onnx_path,
            options.engine_dir,
            precision=options.engine_precision,
            max_batch=options.max_batch,
            workspace_gib=options.workspace_gib,
            progress=options.progress,
            verbose=options.verbose,
        )
    except TensorRTUnavailableError as exc:
        if required:
            raise
        return EngineOutcome(None, str(exc), exc.trtexec)
    return EngineOutcome(path)


def _engine_artifact(result: ExportResult, options: ExportOptions, required: bool) -> FormatOutput:

    options.report(f"TensorRT {options.engine_precision.upper()} engine")
    outcome = export_engine(result.onnx_path, required, options)
    return FormatOutput("engine", outcome.path, outcome.note, outcome.trtexec)


def required_engine(result: ExportResult, options: ExportOptions) -> FormatOutput:
    """Format `engine`: the FP16 engine, or an error saying why TensorRT cannot build it."""
    return _engine_artifact(result, options, required=True)


def optional_engine(result: ExportResult, options: ExportOptions) -> FormatOutput:
    """Format `auto`: the FP16 engine where TensorRT works, else a note and the trtexec line."""
    return _engine_artifact(result, options, required=False)
