"""Which model a station runs when none is named: the newest usable engine, else the export."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ...errors import UniadError
from ...metadata import DEFAULT_ENGINE_DIR

DEFAULT_ONNX = Path("export/model.onnx")


def default_model() -> Path:
    """Newest engine in engines/ usable on this machine, else export/model.onnx, else the newest
    .onnx in export/ (an export named after its checkpoint, e.g. best.onnx)."""
    from ...trt import environment
    from ...trt.sidecar import find_engines

    status = environment.detect()
    if status.usable and status.gpu is not None and status.tensorrt_version is not None:
        engines = find_engines(DEFAULT_ENGINE_DIR, status.tensorrt_version, status.gpu)
        if engines:
            return engines[0]
    if DEFAULT_ONNX.is_file():
        return DEFAULT_ONNX
    exported = sorted(DEFAULT_ONNX.parent.glob("*.onnx"), key=lambda p: p.stat().st_mtime)
    if exported:
        Console(stderr=True).print(
            escape(f"using {exported[-1]} (newest in {DEFAULT_ONNX.parent}/)")
        )
        return exported[-1]
    raise UniadError(
        f"no model given and {DEFAULT_ONNX} does not exist (nor a usable engine in "
        f"{DEFAULT_ENGINE_DIR}/); run `uniad-edge export` first or pass --model"
    )
