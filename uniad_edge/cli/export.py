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

from ..bench.config import parse_frame
from ..errors import UniadError
from ..export.formats import DEFAULT_FORMAT, FORMATS, Exported
from ..export.frame_size import parse_roi
from ..export.int8_gate import GateLimits
from ..export.options import ExportOptions, TritonOptions
from .app import app
from .options import default, given


def _ranking(ranking: dict[str, float]) -> str:
    """Layer groups, the one that moves the score most first, with that move."""
    worst_first = sorted(ranking.items(), key=lambda item: item[1], reverse=True)
    return "; ".join(f"{group} {change:.3f}" for group, change in worst_first)


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.1f} MiB" if path.is_file() else "-"


def _kept_float32(pinned: int, nodes: int) -> str:
    """How much of a `--half` graph the range contract kept float32; a warning when it is most
    of it, since such a model is correct but hardly faster than float32."""
    text = f"{pinned} of the {nodes} float32 graph's nodes (range contract), and the distance head"
    if pinned * 2 > nodes:
        return (
            f"[yellow]{text}: this model's activations are too large for float16, so it runs "
            "mostly in float32 (little speed-up)[/]"
        )
    return text


def _summary(exported: Exported, seconds: float) -> Table:
    result = exported.onnx
    meta = result.metadata
    batch = "dynamic" if meta.batch is None else str(meta.batch)
    table = Table(
        title=escape(f"export: {meta.name} ({meta.preset}, {meta.precision}, batch {batch})")
    )
    table.add_column("item", style="bold cyan")
    table.add_column("value")
    onnx_file = escape(str(result.onnx_path))
    nodes = f"{result.nodes} nodes, {result.traced_nodes} before folding"
    table.add_row("onnx", f"{onnx_file} ({_size(result.onnx_path)}, {nodes})")
    table.add_row("sidecar", escape(str(result.sidecar_path)))
    for parity in result.parity:
        table.add_row("ORT vs PyTorch", parity.describe())
    if not result.parity:
        table.add_row("ORT vs PyTorch", "[yellow]not verified (--no-verify)[/]")
    if result.half_drift is not None:
        table.add_row("fp16 vs fp32", result.half_drift.describe())
        pinned = len(meta.fp32_nodes or ())
        table.add_row("kept float32", _kept_float32(pinned, result.float32_nodes))
    if result.int8 is not None:
        record = result.int8.record
        table.add_row("int8 vs fp32", escape(result.int8.gate.describe()))
        quantized = f"{record['quantized_nodes']} nodes in {', '.join(record['quantized'])}"
        kept = f"; float: {', '.join(record['float'])}" if record["float"] else ""
        table.add_row("quantized", escape(quantized + kept))
        if record["ranking"]:
            table.add_row("int8 alone, p99 Δscore/thr", escape(_ranking(record["ranking"])))
    if result.host_parity is not None:
        table.add_row("in-graph vs host resize", result.host_parity.describe())
    for artifact in exported.artifacts:
        path = artifact.path
        written = f"{escape(str(path))} ({_size(path)})" if path else "[yellow]not built[/]"
        table.add_row(artifact.kind, written)
    if not meta.backbone_pretrained:
        table.add_row("backbone", "[yellow]random-init: scores are not meaningful[/]")
    table.add_row("time", f"{seconds:.1f} s")
    return table


def _formats_help() -> str:
    """Each format of the table, its aliases and what it writes."""
    parts = []
    for fmt in FORMATS.values():
        aliases = f" ({', '.join(fmt.aliases)})" if fmt.aliases else ""
        parts.append(f"{fmt.name}{aliases}: {fmt.description}")
    return "; ".join(parts)


def _batch_sizes(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        message = f"--preferred-batch takes comma-separated integers, got {text!r}"
        raise UniadError(message) from None


def _precision(precision: str | None, half: bool) -> str | None:
    """--half is --precision fp16; with another --precision it is a contradiction."""
    if half and precision not in (None, "fp16"):
        raise UniadError(f"--half means --precision fp16, not --precision {precision}")
    return "fp16" if half else precision


@app.command()
def export(
    ckpt: Annotated[
        Path | None,
        typer.Option(help="Checkpoint: ours (.pth) or an official UniAD ckpt.pth.tar."),
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", help=_formats_help(), show_default=DEFAULT_FORMAT)
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for <name>.onnx and <name>.json (triton: the repository).",
            show_default=default(ExportOptions, "out"),
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="File stem; default: the checkpoint's stem (triton: uniad, the model)."),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="fp32; fp16: the mixed-precision ONNX (float16, float32 distance head); int8: "
            "the Q/DQ ONNX calibrated on --calib-data and gated against float32.",
            show_default=default(ExportOptions, "precision"),
        ),
    ] = None,
    half: Annotated[bool, typer.Option("--half", help="Alias of --precision fp16.")] = False,
    calib_data: Annotated[
        Path | None,
        typer.Option(
            help="int8: folder of the line's good images (and defects) to calibrate and gate on.",
            show_default="the folder the thresholds were calibrated on",
        ),
    ] = None,
    int8_fallback: Annotated[
        bool,
        typer.Option(
            "--int8-fallback",
            help="int8: when the gate is missed, keep the layers that move the score most in "
            "float until it holds (else the export stops).",
        ),
    ] = False,
    int8_rank: Annotated[
        bool,
        typer.Option(
            "--int8-rank",
            help="int8: measure how much each layer group alone moves the score and record the "
            "ranking, even when the gate holds (one gate run per group).",
        ),
    ] = False,
    int8_agreement: Annotated[
        float | None,
        typer.Option(
            help="int8: least share of verdicts that must agree with float32.",
            show_default=str(GateLimits.agreement),
        ),
    ] = None,
    batch: Annotated[
        int | None, typer.Option(help="Static batch size; default: dynamic batch.")
    ] = None,
    dynamic: Annotated[
        bool, typer.Option("--dynamic", help="Dynamic batch (the default).")
    ] = False,
    opset: Annotated[
        int | None,
        typer.Option(
            help="ONNX opset: 17 is the newest TensorRT 8.6 parses; 18+ for TensorRT 10+ only.",
            show_default=default(ExportOptions, "opset"),
        ),
    ] = None,
    verify: Annotated[
        bool | None,
        typer.Option(
            help="ONNX checker + ORT-vs-PyTorch parity (and fp16 drift).",
            show_default=default(ExportOptions, "verify"),
        ),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Dataset whose frames verify the export (else synthetic).")
    ] = None,
    frame_size: Annotated[
        str | None,
        typer.Option(
            help="Camera frame WIDTHxHEIGHT: the graph crops (--roi) and resizes it on the "
            "device (for TensorRT; on a CPU the host resize is faster)."
        ),
    ] = None,
    roi: Annotated[
        str | None, typer.Option(help="X,Y,WIDTH,HEIGHT of --frame-size to crop in the graph.")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Preset for an ambiguous official checkpoint.")
    ] = None,
    workspace: Annotated[
        float | None,
        typer.Option(
            help="TensorRT workspace limit, GiB.",
            show_default=default(ExportOptions, "workspace_gib"),
        ),
    ] = None,
    max_batch: Annotated[
        int | None,
        typer.Option(
            help="Largest batch of the engine profile (triton: max_batch_size).",
            show_default=default(ExportOptions, "max_batch"),
        ),
    ] = None,
    engine_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder for TensorRT engines.", show_default=default(ExportOptions, "engine_dir")
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Show TensorRT's info and verbose messages too.")
    ] = False,
    version: Annotated[
        int | None,
        typer.Option(
            help="triton: the model's version folder.",
            show_default=default(TritonOptions, "version"),
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="triton: replace an existing model version.")
    ] = False,
    triton_backend: Annotated[
        str | None,
        typer.Option(
            help="triton: onnxruntime, python (ONNX Runtime in the Python backend) or tensorrt "
            "(builds the FP16 engine).",
            show_default=default(TritonOptions, "backend"),
        ),
    ] = None,
    instances: Annotated[
        int | None,
        typer.Option(
            help="triton: model instances per device.",
            show_default=default(TritonOptions, "instance_count"),
        ),
    ] = None,
    instance_kind: Annotated[
        str | None,
        typer.Option(help="triton: gpu or cpu.", show_default="gpu; cpu for python"),
    ] = None,
    preferred_batch: Annotated[
        str | None,
        typer.Option(
            help="triton: the dynamic batcher's preferred batch sizes.",
            show_default=default(TritonOptions, "preferred_batch_sizes"),
        ),
    ] = None,
    max_queue_delay_us: Annotated[
        int | None,
        typer.Option(
            help="triton: the dynamic batcher's longest wait for a fuller batch, microseconds.",
            show_default=default(TritonOptions, "max_queue_delay_us"),
        ),
    ] = None,
    ort_trt_fp16: Annotated[
        bool,
        typer.Option(
            "--ort-trt-fp16",
            help="triton: ONNX Runtime's TensorRT accelerator, FP16 (INT8 for an int8 model).",
        ),
    ] = False,
) -> None:
    """Export a checkpoint to one fused ONNX graph (uint8 BGR frames in, map + score out), and
    with --format triton into a Triton model repository in --out."""
    if ckpt is None:
        raise UniadError(
            "--ckpt is required; to register an engine trtexec built, use "
            "`uniad-edge adopt-engine ENGINE --onnx MODEL.onnx`"
        )
    from ..export import export as run_export

    triton = given(
        version=version,
        force=force or None,
        backend=triton_backend,
        instance_count=instances,
        instance_kind=instance_kind,
        preferred_batch_sizes=_batch_sizes(preferred_batch),
        max_queue_delay_us=max_queue_delay_us,
        ort_trt_fp16=ort_trt_fp16 or None,
    )

    console = Console()
    started = time.perf_counter()

    def stage(message: str) -> None:
        console.log(escape(message))
        status.update(f"[bold]{escape(message)}")

    with console.status("[bold]starting export") as status:
        exported = run_export(
            ckpt,
            progress=stage,
            **given(
                format=format,
                out=out,
                name=name,
                batch=batch,
                dynamic=dynamic or None,
                precision=_precision(precision, half),
                calib_data=calib_data,
                int8_fallback=int8_fallback or None,
                int8_rank=int8_rank or None,
                int8_gate=None if int8_agreement is None else GateLimits(agreement=int8_agreement),
                opset=opset,
                verify=verify,
                data=data,
                preset=preset,
                frame_size=parse_frame(frame_size) if frame_size else None,
                roi=parse_roi(roi) if roi else None,
                workspace_gib=workspace,
                max_batch=max_batch,
                engine_dir=engine_dir,
                verbose=verbose or None,
                triton=TritonOptions(**triton) if triton else None,
            ),
        )
    console.print(_summary(exported, time.perf_counter() - started))
    for artifact in exported.artifacts:
        if artifact.path is None:
            note = f"[yellow]no {artifact.kind}:[/] {escape(artifact.note)}"
            console.print(note, highlight=False, soft_wrap=True)
