"""`uniad-edge adopt-engine`: the sidecar for an engine built elsewhere (the trtexec line that
`export` prints), so `run`, `bench` and `serve` use it. It exports nothing, so it is a command
of its own rather than a mode of `export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ..trt.adopt import adopt_engine, parse_gpu
from .app import app
from .options import default, given


@app.command("adopt-engine")
def adopt(
    engine: Annotated[Path, typer.Argument(help="The engine trtexec wrote (--saveEngine).")],
    onnx: Annotated[
        Path, typer.Option(help="The ONNX it was built from; its metadata goes in the sidecar.")
    ],
    precision: Annotated[
        str | None,
        typer.Option(
            help="What the engine was built as: fp32, fp16 or int8.",
            show_default="int8 for an int8 export, else fp16",
        ),
    ] = None,
    min_batch: Annotated[
        int | None,
        typer.Option(
            help="Smallest batch of its profile.", show_default=default(adopt_engine, "min_batch")
        ),
    ] = None,
    opt_batch: Annotated[
        int | None,
        typer.Option(
            help="Batch its profile was tuned for.", show_default=default(adopt_engine, "opt_batch")
        ),
    ] = None,
    max_batch: Annotated[
        int | None,
        typer.Option(
            help="Largest batch of its profile.", show_default=default(adopt_engine, "max_batch")
        ),
    ] = None,
    workspace: Annotated[
        float | None,
        typer.Option(
            help="Workspace limit it was built with, GiB.",
            show_default=default(adopt_engine, "workspace_gib"),
        ),
    ] = None,
    trt_version: Annotated[
        str | None, typer.Option(help="TensorRT that built it, e.g. 10.3.0 (else the local one).")
    ] = None,
    gpu: Annotated[
        str | None,
        typer.Option(help="GPU it was built on as NAME:MAJOR.MINOR, e.g. Orin:8.7 (else local)."),
    ] = None,
) -> None:
    """Write the sidecar of an engine trtexec built, from the ONNX's metadata and the TensorRT
    and GPU that built it; paste the line `export` printed with its trtexec commands."""
    written = adopt_engine(
        engine,
        onnx,
        **given(
            precision=precision,
            min_batch=min_batch,
            opt_batch=opt_batch,
            max_batch=max_batch,
            workspace_gib=workspace,
            trt_version=trt_version,
            gpu=parse_gpu(gpu) if gpu else None,
        ),
    )
    Console().print(f"adopted {escape(str(engine))}: sidecar {escape(str(written))}")
