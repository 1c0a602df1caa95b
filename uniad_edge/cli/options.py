"""What the command modules share: options left unset pass through as None, so every default
lives once, in the config dataclass or function that uses it, and `--help` shows it from there."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..backends import register_model_backends
from ..runtime.backends import registry
from ..runtime.station import StationConfig

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

register_model_backends()  # every command opens checkpoints too; `--backend` help lists torch


def given(**options: Any) -> dict[str, Any]:
    """The options the user set; None means "not given", so the callee's default applies."""
    return {name: value for name, value in options.items() if value is not None}


def default(owner: type | Callable[..., Any], name: str) -> str:
    """The default of a dataclass field, or of a function's keyword, as `--help` shows it
    (`show_default=`)."""
    if dataclasses.is_dataclass(owner):
        field = owner.__dataclass_fields__[name]
        if field.default is not dataclasses.MISSING:
            value = field.default
        elif field.default_factory is not dataclasses.MISSING:
            value = field.default_factory()
        else:
            raise ValueError(f"{owner.__name__}.{name} has no default")
    else:
        value = defaults(owner)[name]
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """A function's keyword defaults, for a command that needs the values it will run with."""
    return {
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def counting_bar(console: Console) -> Progress:
    """The transient "description, bar, done/total" bar of the commands that count items
    (rich is imported here, not at startup)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    return Progress(*columns, console=console, transient=True)


def split_providers(text: str | None) -> list[str] | None:
    """`--providers cuda,cpu` as the list the runtime takes; None when not given."""
    return text.split(",") if text else None


# Options `run` and `serve` share word for word (one definition, one help text).
StationFile = Annotated[
    Path | None,
    typer.Option(help="station TOML: cameras (source, class, threshold, roi, save), outputs"),
]
Threshold = Annotated[float | None, typer.Option(help="raw-score threshold overriding the model's")]
Threads = Annotated[int | None, typer.Option(min=1, help="ONNX Runtime intra-op threads")]
Providers = Annotated[
    str | None, typer.Option(help="comma-separated ONNX Runtime providers, e.g. cuda,cpu")
]
Backend = Annotated[
    str | None,
    typer.Option(
        help=f"{registry.describe()}; auto: from the suffix or URL",
        show_default=default(StationConfig, "backend"),
    ),
]
# The verdict log's rotation and the NG evidence's retention, for `run` and `serve` alike.
LogMaxMb = Annotated[
    float | None,
    typer.Option(
        min=0.001,
        help="rotate the log at this size (LOG -> LOG.1 -> ...); default: never (logrotate)",
    ),
]
LogKeep = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="rotated logs kept with --log-max-mb",
        show_default=default(StationConfig, "log_keep"),
    ),
]
KeepEvidence = Annotated[
    str | None,
    typer.Option(
        help="keep only the newest NG evidence: a count (5000), an age (30d) and/or a size "
        "(20GB), comma-separated; default: keep all"
    ),
]
