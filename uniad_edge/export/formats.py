"""Export formats in one table, and `export(ckpt, format=..., **options)`, the Python API that
`uniad-edge export` calls.

Every format starts from the verified fused ONNX graph; a format then runs its steps on it. A
step is `fn(result: ExportResult, options: ExportOptions) -> FormatOutput`, given in the table as a
small function here that imports its module inside it, so a format's code (TensorRT, Triton)
loads only when that format is asked for. A format may also have a pre-flight `check`,
`fn(options: ExportOptions) -> None` raising `UniadError`, run before the export so that a
refusal known up front (an existing Triton version without --force) costs no tracing. Adding a
format (e.g. a Triton model repository) is one `ExportFormat` entry in `FORMATS` plus its own
module holding the step; new settings go into `ExportOptions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifacts import ENGINE, ONNX
from ..errors import UniadError
from .options import ExportOptions
from .output import FormatOutput

if TYPE_CHECKING:
    from ..model import Checkpoint
    from .pipeline import ExportResult


@dataclass
class Exported:
    """What `export` produced: the ONNX (always) and each step's artifact."""

    onnx: ExportResult
    artifacts: list[FormatOutput] = field(default_factory=list)


Step = Callable[["ExportResult", ExportOptions], FormatOutput]
Check = Callable[[ExportOptions], None]


@dataclass(frozen=True)
class ExportFormat:
    """`makes` is the artifact kind (`uniad_edge.artifacts.KINDS`) this format exists to make,
    when it makes one a backend runs (`bench` prepares each row's artifact through it);
    `precision_option` is the `ExportOptions` field that sets that artifact's precision;
    `probe` (no arguments) says why this machine cannot make it, or None."""

    name: str
    description: str
    steps: tuple[Step, ...] = ()
    aliases: tuple[str, ...] = ()
    check: Check | None = None
    makes: str | None = None
    precision_option: str = "precision"
    probe: Callable[[], str | None] | None = None

    def unavailable(self) -> str | None:
        """Why this machine cannot make this format's artifact (None: it can, or may)."""
        return None if self.probe is None else self.probe()


def _optional_engine(result: ExportResult, options: ExportOptions) -> FormatOutput:
    from .engine import optional_engine

    return optional_engine(result, options)


def _required_engine(result: ExportResult, options: ExportOptions) -> FormatOutput:
    from .engine import required_engine

    return required_engine(result, options)


def _tensorrt_unusable() -> str | None:
    from .engine import tensorrt_unusable

    return tensorrt_unusable()


def _triton_repository(result: ExportResult, options: ExportOptions) -> FormatOutput:
    from .triton_repo import repository_step

    return repository_step(result, options)


def _check_triton_repository(options: ExportOptions) -> None:
    from .triton_repo import check_repository

    check_repository(options)


FORMATS: dict[str, ExportFormat] = {
    fmt.name: fmt
    for fmt in (
        ExportFormat(
            "auto",
            "ONNX, plus the FP16 engine where TensorRT works",
            (_optional_engine,),
        ),
        ExportFormat("onnx", "the fused ONNX graph and its JSON sidecar", makes=ONNX),
        ExportFormat(
            "engine",
            "ONNX and the TensorRT FP16 engine (an error without TensorRT)",
            (_required_engine,),
            aliases=("trt", "tensorrt"),
            makes=ENGINE,
            precision_option="engine_precision",
            probe=_tensorrt_unusable,
        ),
        ExportFormat(
            "triton",
            "a Triton Inference Server model repository in --out (see the --triton-* options)",
            (_triton_repository,),
            check=_check_triton_repository,
        ),
    )
}
DEFAULT_FORMAT = "auto"


def normalize_format(value: str) -> str:
    """A format's name from its name or alias, case-insensitive; one-line error otherwise."""
    wanted = value.lower()
    for fmt in FORMATS.values():
        if wanted == fmt.name or wanted in fmt.aliases:
            return fmt.name
    choices = ", ".join(n for f in FORMATS.values() for n in (f.name, *f.aliases))
    raise UniadError(f"--format {value!r} is not one of {choices}")


def format_for(kind: str) -> ExportFormat | None:
    """The format that makes artifacts of `kind`, or None when no format does."""
    return next((f for f in FORMATS.values() if f.makes == kind), None)


def run_steps(
    fmt: ExportFormat, result: ExportResult, options: ExportOptions
) -> list[FormatOutput]:
    """`fmt`'s steps on an exported ONNX (`export` runs them; `bench` too, on an ONNX it has)."""
    return [step(result, options) for step in fmt.steps]


def export(ckpt: str | Path | Checkpoint, format: str = DEFAULT_FORMAT, **options: Any) -> Exported:
    """Export a checkpoint (ours or official) in `format`; `options` are `ExportOptions` fields.

    Raises `UniadError` (one line) on bad input or failed checks; nothing partial is left.
    """
    fmt = FORMATS[normalize_format(format)]
    try:
        settings = ExportOptions(**options)
    except TypeError as exc:
        raise UniadError(f"export: {exc}; the options are ExportOptions' fields") from None
    if fmt.check is not None:
        fmt.check(settings)
    from .pipeline import export_graph

    result = export_graph(ckpt, settings)
    return Exported(result, run_steps(fmt, result, settings))
