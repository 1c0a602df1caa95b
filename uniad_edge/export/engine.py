"""The TensorRT stage of `export`: build the FP16 engine where TensorRT and a GPU are usable.

`auto` never fails for want of TensorRT (the ONNX is the portable artifact); `engine` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UniadError

FORMATS = ("auto", "onnx", "engine", "triton")
ALIASES = {"trt": "engine", "tensorrt": "engine"}


def normalize_format(value: str) -> str:
    """`auto`, `onnx`, `engine` (aliases `trt`, `tensorrt`), case-insensitive."""
    fmt = ALIASES.get(value.lower(), value.lower())
    if fmt not in FORMATS:
        choices = ", ".join([*FORMATS, *ALIASES])
        raise UniadError(f"--format {value!r} is not one of {choices}")
    return fmt


@dataclass(frozen=True)
class EngineOutcome:
    """The engine written, or why none was (with the trtexec line to build one elsewhere)."""

    path: Path | None
    note: str = ""
    trtexec: str = ""


def export_engine(
    onnx_path: str | os.PathLike[str],
    required: bool,
    engine_dir: str | os.PathLike[str] = "engines",
    workspace_gib: float = 4.0,
    max_batch: int = 8,
    progress: Callable[[str], None] | None = None,
) -> EngineOutcome:
    """Build the FP16 engine; without TensorRT raise when `required`, else say how to get one."""
    from ..trt import TensorRTUnavailableError, build_engine

    if max_batch < 1:
        raise UniadError(f"--max-batch {max_batch} must be at least 1")
    try:
        path = build_engine(
            onnx_path,
            engine_dir,
            precision="fp16",
            max_batch=max_batch,
            workspace_gib=workspace_gib,
            progress=progress,
        )
    except TensorRTUnavailableError as exc:
        if required:
            raise
        return EngineOutcome(None, str(exc), exc.trtexec)
    return EngineOutcome(path)
