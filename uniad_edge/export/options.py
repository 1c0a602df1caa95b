"""Every export setting and its default, in one torch-free dataclass: `uniad-edge export` passes
only what the user set, and `--help` shows these defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UniadError

MIN_OPSET = 17
DEFAULT_OPSET = 17
"""The newest opset TensorRT 8.6 (JetPack 6.0) parses; 18+ only for TensorRT 10 and newer."""


@dataclass
class ExportOptions:
    """`batch` None is a dynamic batch (`dynamic=True` only says so explicitly); `half` gives the
    mixed-precision graph; `verify` runs the ONNX checker and the ORT-vs-PyTorch parity check.
    `engine_dir`, `workspace_gib` and `max_batch` apply to formats that build an engine."""

    out: Path = Path("export")
    name: str | None = None
    batch: int | None = None
    dynamic: bool = False
    half: bool = False
    opset: int = DEFAULT_OPSET
    verify: bool = True
    data: Path | None = None
    preset: str | None = None
    engine_dir: Path = Path("engines")
    workspace_gib: float = 4.0
    max_batch: int = 8
    verbose: bool = False  # TensorRT's info and verbose messages in the progress log too
    progress: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.engine_dir = Path(self.engine_dir)
        if self.dynamic and self.batch is not None:
            raise UniadError("--dynamic and --batch exclude each other; pass one of them")

    def report(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)
