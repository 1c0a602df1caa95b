"""Export formats in one table, and `export(ckpt, format=..., **options)`, the Python API that
`uniad-edge export` calls.

Every format starts from the verified fused ONNX graph; a format then runs its steps on it, each
named by an import string ("module:function") and imported only when that format is asked for.
A step is `fn(result: ExportResult, options: ExportOptions) -> Artifact`. A format may also name a
pre-flight `check`, `fn(options: ExportOptions) -> None` raising `UniadError`, run before the
export so that a refusal known up front (an existing Triton version without --force) costs no
tracing. Adding a format (e.g. a Triton model repository) is one `ExportFormat` entry in `FORMATS`
plus its own module holding the step; new settings go into `ExportOptions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifacts import ENGINE, ONNX
from ..errors import UniadError
from ..targets import load_target
from .options import ExportOptions

if TYPE_CHECKING:
    from ..model import Checkpoint
    from .pipeline import ExportResult


@dataclass(frozen=True)
class Artifact:
    """A file or folder a format step wrote (`path`), or None with why not (`note`) and the
    command that makes it elsewhere (`command`)."""

    kind: str
    path: Path | None
    note: str = ""
    command: str = ""


@dataclass
class Exported:
    """What `export` produced: the ONNX (always) and each step's artifact."""

    onnx: ExportResult
    artifacts: list[Artifact] = field(default_factory=list)


@dataclass(frozen=True)
class ExportFormat:
    """`makes` is the artifact kind (`uniad_edge.artifacts.KINDS`) this format exists to make,
    when it makes one a backend runs (`bench` prepares each row's artifact through it);
    `precision_option` is the `ExportOptions` field that sets that artifact's precision;
    `probe` ("module:function", no arguments) says why this machine cannot make it, or None."""

    name: str
    description: str
    steps: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    check: str | None = None
    makes: str | None = None
    precision_option: str = "precision"
    probe: str | None = None

    def unavailable(self) -> str | None:
        """Why this machine cannot make this format's artifact (None: it can, or may)."""
        return None if self.probe is None else load_target(self.probe)()


FORMATS: dict[str, ExportFormat] = {
    fmt.name: fmt
    for fmt in (
        ExportFormat(
            "auto",
            "ONNX, plus the FP16 engine where TensorRT works",
            ("uniad_edge.export.engine:optional_engine",),
        ),
        ExportFormat("onnx", "the fused ONNX graph and its JSON sidecar", makes=ONNX),
        ExportFormat(
            "engine",
            "ONNX and the TensorRT FP16 engine (an error without TensorRT)",
            ("uniad_edge.export.engine:required_engine",),
            aliases=("trt", "tensorrt"),
            makes=ENGINE,
            precision_option="engine_precision",
            probe="uniad_edge.export.engine:tensorrt_unusable",
        ),
        ExportFormat(
            "triton",
            "a Triton Inference Server model repository in --out (see the --triton-* options)",
            ("uniad_edge.export.triton_repo:repository_step",),
            check="uniad_edge.export.triton_repo:check_repository",
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


def _step(target: str) -> Callable[[ExportResult, ExportOptions], Artifact]:
    return load_target(target)


def format_for(kind: str) -> ExportFormat | None:
    """The format that makes artifacts of `kind`, or None when no format does."""
    return next((f for f in FORMATS.values() if f.makes == kind), None)


def run_steps(fmt: ExportFormat, result: ExportResult, options: ExportOptions) -> list[Artifact]:
    """`fmt`'s steps on an exported ONNX (`export` runs them; `bench` too, on an ONNX it has)."""
    return [_step(target)(result, options) for target in fmt.steps]


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
        load_target(fmt.check)(settings)
    from .pipeline import export_graph

    result = export_graph(ckpt, settings)
    return Exported(result, run_steps(fmt, result, settings))
