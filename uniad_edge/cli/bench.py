"""`uniad-edge bench`: latency, throughput and memory of each backend against PyTorch fp32."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ..bench import BenchConfig, rich_table, run_bench
from ..bench.config import (
    DEFAULT_BACKENDS,
    bench_backends,
    parse_batches,
    parse_frame,
    split_list,
)
from ..presets import PRESETS
from .app import app
from .options import default, given


@app.command()
def bench(
    model: Annotated[
        str | None,
        typer.Option(help="Exported .onnx, .engine, checkpoint .pth or grpc://host:8001/uniad."),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(help=f"Random-weight model of a preset ({', '.join(PRESETS)}): speed only."),
    ] = None,
    backends: Annotated[
        str | None,
        typer.Option(
            help=f"Comma-separated, of: {','.join(bench_backends())}.",
            show_default=f"{','.join(DEFAULT_BACKENDS)}; triton for a URL",
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: fp32,fp16,int8 (int8: an export --precision int8 model).",
            show_default=default(BenchConfig, "precisions"),
        ),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated batch sizes, e.g. 1,8.",
            show_default=default(BenchConfig, "batches"),
        ),
    ] = None,
    warmup: Annotated[
        int | None,
        typer.Option(
            help="Untimed calls before timing each row.",
            show_default=default(BenchConfig, "warmup"),
        ),
    ] = None,
    runs: Annotated[
        int | None,
        typer.Option(help="Timed calls per row.", show_default=default(BenchConfig, "runs")),
    ] = None,
    seconds: Annotated[
        float | None, typer.Option(help="Time each row for this long instead of --runs.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads (ORT intra-op, torch, BLAS); default: all.")
    ] = None,
    frame_size: Annotated[
        str | None,
        typer.Option(
            help="Camera frame WIDTHxHEIGHT for the end-to-end column.",
            show_default="x".join(map(str, BenchConfig.frame_wh)),
        ),
    ] = None,
    e2e: Annotated[
        bool | None,
        typer.Option(
            help="Also time frame -> resize -> infer -> map + verdict.",
            show_default=default(BenchConfig, "e2e"),
        ),
    ] = None,
    e2e_maps: Annotated[
        str | None,
        typer.Option(
            help="Full-resolution maps in the end-to-end column: all, ng (NG frames, as a "
            "station saving evidence) or none.",
            show_default=default(BenchConfig, "e2e_maps"),
        ),
    ] = None,
    roofline: Annotated[
        bool, typer.Option(help="Also measure dense matmul peaks and print achieved/peak.")
    ] = False,
    providers: Annotated[
        str | None, typer.Option(help="ONNX Runtime providers, e.g. cpu or cuda,cpu.")
    ] = None,
    engine_dir: Annotated[
        Path | None, typer.Option(help="Where TensorRT engines are built (default: temporary).")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write results as Markdown.")] = None,
) -> None:
    """Benchmark PyTorch, ONNX Runtime and TensorRT rows; each row runs in a fresh process."""
    config = BenchConfig(
        **given(
            model=model,
            preset=preset,
            backends=tuple(split_list(backends)) if backends is not None else None,
            precisions=tuple(split_list(precision)) if precision is not None else None,
            batches=parse_batches(batch) if batch is not None else None,
            warmup=warmup,
            runs=runs,
            seconds=seconds,
            threads=threads,
            frame_wh=parse_frame(frame_size) if frame_size is not None else None,
            e2e=e2e,
            e2e_maps=e2e_maps,
            roofline=roofline or None,
            providers=tuple(split_list(providers)) if providers else None,
            engine_dir=engine_dir,
        )
    )
    console = Console() if Console().is_terminal else Console(width=200)
    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("bench", total=1.0)
        result = run_bench(
            config, lambda what, done: bar.update(task, description=what, completed=done)
        )
    console.print(rich_table(result))
    if json_path is not None:
        console.print(escape(f"wrote {result.write_json(json_path)}"))
    if markdown is not None:
        console.print(escape(f"wrote {result.write_markdown(markdown)}"))
