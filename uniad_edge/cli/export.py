"""`uniad-edge export`: checkpoint -> verified fused ONNX (+ TensorRT FP16 engine where possible).

torch and onnx are imported inside the command, so the lean runtime install never loads them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import UniadError
from .app import app


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.1f} MiB" if path.is_file() else "-"


def _summary(result: object, engine: object, seconds: float) -> Table:
    from ..export import EngineOutcome, ExportResult

    assert isinstance(result, ExportResult) and isinstance(engine, EngineOutcome | None)
    meta = result.metadata
    batch = "dynamic" if meta.batch is None else str(meta.batch)
    table = Table(title=f"export: {meta.name} ({meta.preset}, {meta.precision}, batch {batch})")
    table.add_column("item", style="bold cyan")
    table.add_column("value")
    onnx_file = escape(str(result.onnx_path))
    nodes = f"{result.nodes} nodes, {result.traced_nodes} before folding"
    table.add_row("onnx", f"{onnx_file} ({_size(result.onnx_path)}, {nodes})")
    table.add_row("sidecar", str(result.sidecar_path))
    for parity in result.parity:
        table.add_row("ORT vs PyTorch", parity.describe())
    if not result.parity:
        table.add_row("ORT vs PyTorch", "[yellow]not verified (--no-verify)[/]")
    if result.half_drift is not None:
        table.add_row("fp16 vs fp32", result.half_drift.describe())
    if engine is not None:
        path = engine.path
        table.add_row("engine", f"{path} ({_size(path)})" if path else "[yellow]not built[/]")
    if not meta.backbone_pretrained:
        table.add_row("backbone", "[yellow]random-init: scores are not meaningful[/]")
    table.add_row("time", f"{seconds:.1f} s")
    return table


@app.command()
def export(
    ckpt: Annotated[
        Path | None,
        typer.Option(help="Checkpoint: ours (.pth) or an official UniAD ckpt.pth.tar."),
    ] = None,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto (ONNX, plus the FP16 engine where TensorRT works), onnx, engine (trt).",
        ),
    ] = "auto",
    out: Annotated[Path, typer.Option(help="Folder for <name>.onnx and <name>.json.")] = Path(
        "export"
    ),
    name: Annotated[
        str | None, typer.Option(help="File stem; default: the checkpoint's stem.")
    ] = None,
    half: Annotated[
        bool,
        typer.Option("--half", help="Mixed-precision ONNX (float16, float32 distance head)."),
    ] = False,
    batch: Annotated[
        int | None, typer.Option(help="Static batch size; default: dynamic batch.")
    ] = None,
    dynamic: Annotated[
        bool, typer.Option("--dynamic", help="Dynamic batch (the default).")
    ] = False,
    opset: Annotated[
        int | None,
        typer.Option(help="ONNX opset; default 17 (newest TensorRT 8.6 parses); 18+: TRT 10+."),
    ] = None,
    verify: Annotated[
        bool, typer.Option(help="ONNX checker + ORT-vs-PyTorch parity (and fp16 drift).")
    ] = True,
    data: Annotated[
        Path | None, typer.Option(help="Dataset whose frames verify the export (else synthetic).")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Preset for an ambiguous official checkpoint.")
    ] = None,
    workspace: Annotated[float, typer.Option(help="TensorRT workspace limit, GiB.")] = 4.0,
    max_batch: Annotated[int, typer.Option(help="Largest batch of the engine profile.")] = 8,
    engine_dir: Annotated[Path, typer.Option(help="Folder for TensorRT engines.")] = Path(
        "engines"
    ),
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Show TensorRT's info and verbose messages too.")
    ] = False,
    adopt_engine: Annotated[
        Path | None,
        typer.Option(help="Engine built elsewhere (trtexec): write its sidecar, export nothing."),
    ] = None,
    onnx: Annotated[
        Path | None, typer.Option(help="With --adopt-engine: the ONNX it was built from.")
    ] = None,
    trt_version: Annotated[
        str | None, typer.Option(help="With --adopt-engine: TensorRT that built it (else local).")
    ] = None,
    gpu: Annotated[
        str | None, typer.Option(help="With --adopt-engine: GPU as NAME:MAJOR.MINOR (else local).")
    ] = None,
) -> None:
    """Export a checkpoint to one fused ONNX graph (uint8 BGR frames in, map + score out)."""
    from ..export import export_engine, export_onnx, normalize_format

    if adopt_engine is not None:
        _adopt(adopt_engine, onnx, trt_version, gpu, max_batch, workspace)
        return
    if ckpt is None:
        raise UniadError("--ckpt is required (or --adopt-engine ENGINE --onnx MODEL.onnx)")
    fmt = normalize_format(format)
    if dynamic and batch is not None:
        raise UniadError("--dynamic and --batch exclude each other; pass one of them")
    console = Console()
    started = time.perf_counter()

    def stage(message: str) -> None:
        console.log(escape(message))
        status.update(f"[bold]{escape(message)}")

    with console.status("[bold]starting export") as status:
        result = export_onnx(
            ckpt,
            out,
            name,
            batch=batch,
            half=half,
            opset=opset,
            verify=verify,
            data=data,
            preset=preset,
            progress=stage,
        )
        engine = None
        if fmt != "onnx":
            stage("TensorRT FP16 engine")
            engine = export_engine(
                result.onnx_path, fmt == "engine", engine_dir, workspace, max_batch, stage, verbose
            )
    console.print(_summary(result, engine, time.perf_counter() - started))
    if engine is not None and engine.path is None:
        note = f"[yellow]no engine:[/] {escape(engine.note)}"
        console.print(note, highlight=False, soft_wrap=True)


def _adopt(
    engine: Path,
    onnx: Path | None,
    trt_version: str | None,
    gpu: str | None,
    max_batch: int,
    workspace: float,
) -> None:
    """`--adopt-engine`: the sidecar for an engine trtexec built, so `run`/`bench` use it."""
    from ..trt import adopt_engine, parse_gpu

    if onnx is None:
        raise UniadError("--adopt-engine needs --onnx: the ONNX the engine was built from")
    written = adopt_engine(
        engine,
        onnx,
        trt_version=trt_version,
        gpu=parse_gpu(gpu) if gpu else None,
        max_batch=max_batch,
        workspace_gib=workspace,
    )
    Console().print(f"adopted {escape(str(engine))}: sidecar {escape(str(written))}")
