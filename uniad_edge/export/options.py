"""Every export setting and its default, in one torch-free dataclass: `uniad-edge export` passes
only what the user set, and `--help` shows these defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import InitVar, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UniadError
from ..metadata import DEFAULT_ENGINE_DIR, DEFAULT_MAX_BATCH, DEFAULT_WORKSPACE_GIB, PRECISIONS
from ..names import check_name
from .int8_gate import GateLimits

if TYPE_CHECKING:
    from ..presets import Preset

MIN_OPSET = 17
MAX_OPSET = 18
"""The supported range: 17 is lowered from the exporter's native 18; torch writes nothing newer
for this model (it silently wrote 18 for --opset 99)."""
DEFAULT_OPSET = 17
"""The newest opset TensorRT 8.6 (JetPack 6.0) parses; 18+ only for TensorRT 10 and newer."""
TRITON_BACKENDS = ("onnxruntime", "python", "tensorrt")
KINDS = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}


def check_opset(opset: int) -> int:
    """Refuse an opset outside the supported range before any tracing, naming the range."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UniadError(
            f"--opset {opset} is not supported: choose {MIN_OPSET}..{MAX_OPSET} ({MIN_OPSET} for "
            f"TensorRT 8.6, {MAX_OPSET} for TensorRT 10 and newer)"
        )
    return opset


@dataclass(frozen=True)
class TritonOptions:
    """The Triton model repository's settings (`--format triton`), each with its default.

    `backend`: onnxruntime (model.onnx), python (model.onnx run by ONNX Runtime in Triton's
    Python backend) or tensorrt (model.plan). `instance_kind` None means GPU for ONNX Runtime and
    TensorRT (Triton's home) and CPU for Python; `ort_trt_fp16` adds ONNX Runtime's TensorRT
    accelerator in FP16. Through `export()`, ExportOptions' `name` (when set), `max_batch` and
    `workspace_gib` replace `name`, `max_batch_size` and `ort_trt_workspace_gib`."""

    name: str = "uniad"
    version: int = 1
    backend: str = "onnxruntime"
    max_batch_size: int = DEFAULT_MAX_BATCH
    preferred_batch_sizes: tuple[int, ...] = (4, 8)
    max_queue_delay_us: int = 500
    instance_count: int = 1
    instance_kind: str | None = None
    ort_trt_fp16: bool = False
    ort_trt_workspace_gib: float = DEFAULT_WORKSPACE_GIB
    ort_threads: int | None = None
    force: bool = False

    def __post_init__(self) -> None:
        check_name(self.name, "Triton model name")

    def with_overrides(self, **values: object) -> TritonOptions:
        """These options with every non-None value of `values` applied."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    @property
    def kind(self) -> str:
        default = "cpu" if self.backend == "python" else "gpu"
        return KINDS[(self.instance_kind or default).lower()]


@dataclass
class ExportOptions:
    """`batch` None is a dynamic batch (`dynamic=True` only says so explicitly); `precision`
    "fp16" gives the mixed-precision graph (`half=True` is its alias), "int8" the Q/DQ graph
    calibrated on `calib_data` and gated against float32 (`int8_gate`); `verify` runs the ONNX
    checker and the ORT-vs-PyTorch parity check. `engine_dir`, `workspace_gib`, `max_batch` and
    `engine_precision` apply to formats that build an engine (and `max_batch` to Triton's
    batches); `triton` to the Triton model repository. Every step receives this object whole."""

    out: Path = Path("export")
    name: str | None = None
    batch: int | None = None
    dynamic: bool = False
    precision: str = "fp32"
    half: InitVar[bool | None] = None
    opset: int = DEFAULT_OPSET
    verify: bool = True
    data: Path | None = None
    preset: str | Preset | None = None
    engine_dir: Path = DEFAULT_ENGINE_DIR
    workspace_gib: float = DEFAULT_WORKSPACE_GIB
    max_batch: int = DEFAULT_MAX_BATCH
    engine_precision: str = "fp16"
    verbose: bool = False  # TensorRT's info and verbose messages in the progress log too
    frame_size: tuple[int, int] | None = None  # (width, height): crop/resize baked in the graph
    roi: tuple[int, int, int, int] | None = None  # (x, y, width, height) within frame_size
    triton: TritonOptions = field(default_factory=TritonOptions)
    # --precision int8: the line's images (default: the thresholds' calibration folder), how
    # many calibrate and how many held-out ones the gate judges, its limits, and whether a
    # missed gate keeps layer groups in float (fallback) rather than stopping the export;
    # `int8_rank` measures and records every group's sensitivity even when the gate holds.
    calib_data: Path | None = None
    calib_images: int = 32
    gate_images: int = 100
    int8_gate: GateLimits = field(default_factory=GateLimits)
    int8_fallback: bool = False
    int8_rank: bool = False
    progress: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self, half: bool | None) -> None:
        self.out = Path(self.out)
        self.engine_dir = Path(self.engine_dir)
        if self.name is not None:
            check_name(self.name, "--name")
        if half:
            self.precision = "fp16"
        if self.dynamic and self.batch is not None:
            raise UniadError("--dynamic and --batch exclude each other; pass one of them")
        for what, value in (
            ("--precision", self.precision),
            ("engine precision", self.engine_precision),
        ):
            if value not in PRECISIONS:
                raise UniadError(f"{what} {value!r} is not one of {', '.join(PRECISIONS)}")
        check_opset(self.opset)
        if "int8" in (self.precision, self.engine_precision):
            # An INT8 engine is built from the Q/DQ graph, and that graph only as INT8.
            self.precision = self.engine_precision = "int8"
        if self.calib_data is not None:
            self.calib_data = Path(self.calib_data)
            if self.precision != "int8":
                raise UniadError("--calib-data is for --precision int8; drop it or add that")

    @property
    def is_half(self) -> bool:
        """The mixed-precision graph (float16, float32 distance head)."""
        return self.precision == "fp16"

    def report(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)
