"""`uniad-edge export`: checkpoint -> verified fused ONNX (+ TensorRT FP16 engine where possible).

torch and onnx are imported inside the command, so the lean runtime install never loads them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import UniadError
from .app import app

if TYPE_CHECKING:
    from ..export.triton_repo import TritonOptions


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
    table.add_row("onnx", f"{onnx_file} ({_size(result.onnx_path)}, {result.nodes} nodes)")
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


def _batch_list(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UniadError(f"--preferred-batch {text!r} must be comma-separated integers") from None


def _export_triton(
    console: Console,
    source: Path,
    out: Path,
    options: TritonOptions,
    onnx_options: dict[str, Any],
    started: float,
) -> None:
    from ..export.triton_repo import export_triton_repository

    with console.status("[bold]exporting the Triton model repository"):
        repo = export_triton_repository(source, out, options, **onnx_options)
    meta, opts = repo.metadata, repo.options
    table = Table(
        title=f"export: Triton model {escape(opts.name)} v{opts.version} ({escape(meta.preset)})"
    )
    table.add_column("item", style="bold cyan")
    table.add_column("value")
    table.add_row("repository", escape(str(repo.root)))
    for path in repo.files:
        table.add_row("file", f"{escape(str(path))} ({_size(path)})")
    table.add_row("backend", f"{opts.backend} ({opts.kind}, x{opts.instance_count})")
    preferred = ",".join(map(str, opts.preferred_batch_sizes))
    table.add_row(
        "batching",
        f"max {opts.max_batch_size}, preferred {preferred}, delay {opts.max_queue_delay_us} us",
    )
    for parity in getattr(repo.onnx_export, "parity", []):
        table.add_row("ORT vs PyTorch", parity.describe())
    table.add_row("serve", escape(f"tritonserver --model-repository {repo.root.resolve()}"))
    table.add_row("time", f"{time.perf_counter() - started:.1f} s")
    console.print(table)


@app.command()
def export(
    ckpt: Annotated[
        Path,
        typer.Option(
            help="Checkpoint: ours (.pth) or official ckpt.pth.tar (triton: also a .onnx/.engine)."
        ),
    ],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help=(
                "auto (ONNX, plus the FP16 engine where TensorRT works), onnx, engine (trt), "
                "triton (a model repository in --out)."
            ),
        ),
    ] = "auto",
    out: Annotated[
        Path, typer.Option(help="Folder for <name>.onnx and <name>.json (triton: the repository).")
    ] = Path("export"),
    name: Annotated[
        str | None,
        typer.Option(
            help="File stem (default: the checkpoint's stem); triton: the model name (uniad)."
        ),
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
    opset: Annotated[int, typer.Option(help="ONNX opset (17 or newer).")] = 18,
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
    max_batch: Annotated[
        int, typer.Option(help="Largest batch of the engine profile (triton: max_batch_size).")
    ] = 8,
    engine_dir: Annotated[Path, typer.Option(help="Folder for TensorRT engines.")] = Path(
        "engines"
    ),
    version: Annotated[int | None, typer.Option(help="triton: model version folder (1).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="triton: replace an existing model version.")
    ] = False,
    triton_backend: Annotated[
        str | None,
        typer.Option(help="triton: onnxruntime (default), python (ORT in Python) or tensorrt."),
    ] = None,
    instances: Annotated[int | None, typer.Option(help="triton: instances per device (1).")] = None,
    instance_kind: Annotated[
        str | None, typer.Option(help="triton: gpu or cpu (gpu; cpu for python).")
    ] = None,
    preferred_batch: Annotated[
        str | None, typer.Option(help="triton: dynamic batcher's preferred sizes (4,8).")
    ] = None,
    max_queue_delay_us: Annotated[
        int | None, typer.Option(help="triton: dynamic batcher's max queue delay, us (500).")
    ] = None,
    ort_trt_fp16: Annotated[
        bool,
        typer.Option("--ort-trt-fp16", help="triton: ONNX Runtime's TensorRT accelerator, FP16."),
    ] = False,
) -> None:
    """Export a checkpoint to one fused ONNX graph (uint8 BGR frames in, map + score out), or
    with --format triton to a Triton model repository in --out."""
    from ..export import export_engine, export_onnx, normalize_format

    fmt = normalize_format(format)
    if dynamic and batch is not None:
        raise UniadError("--dynamic and --batch exclude each other; pass one of them")
    console = Console()
    started = time.perf_counter()
    if fmt == "triton":
        from ..export.triton_repo import TritonOptions

        options = TritonOptions().with_overrides(
            name=name,
            version=version,
            backend=triton_backend,
            max_batch_size=max_batch,
            preferred_batch_sizes=_batch_list(preferred_batch),
            max_queue_delay_us=max_queue_delay_us,
            instance_count=instances,
            instance_kind=instance_kind,
            ort_trt_fp16=ort_trt_fp16 or None,
            force=force or None,
        )
        onnx_options = dict(batch=batch, half=half, opset=opset, verify=verify, data=data)
        _export_triton(console, ckpt, out, options, dict(onnx_options, preset=preset), started)
        return

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
                result.onnx_path, fmt == "engine", engine_dir, workspace, max_batch, stage
            )
    console.print(_summary(result, engine, time.perf_counter() - started))
    if engine is not None and engine.path is None:
        note = f"[yellow]no engine:[/] {escape(engine.note)}"
        console.print(note, highlight=False, soft_wrap=True)
