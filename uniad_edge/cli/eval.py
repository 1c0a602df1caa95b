"""`uniad-edge eval`: AUROC (image, pixel) and AU-PRO of a model on a test split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app
from .options import counting_bar, given


@app.command("eval")
def evaluate_command(
    ckpt: Annotated[
        str,
        typer.Option(
            "--ckpt",
            "--model",
            help="Checkpoint (.pth, official .tar), or any artifact `run` takes: exported .onnx, "
            ".engine or a served grpc:// / http:// URL (scored through the runtime).",
        ),
    ],
    data: Annotated[Path, typer.Option(help="Dataset with a test split (MVTec layout etc.).")],
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the metrics as JSON here.")
    ] = None,
    plots: Annotated[Path | None, typer.Option(help="Folder for roc.png and heatmaps.png.")] = None,
    classes: Annotated[str | None, typer.Option(help="Comma-separated classes (all).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per forward pass.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cpu).")] = None,
    workers: Annotated[int | None, typer.Option(help="Image decoding processes.")] = None,
) -> None:
    """Score the test split; print a table, optionally write JSON and PNG plots."""
    from rich.console import Console
    from rich.markup import escape

    from ..data import open_dataset
    from ..evaluate import evaluate
    from ..evaluate.plots import write_plots
    from ..evaluate.table import print_report
    from ..fileio import write_json_atomic

    console = Console()
    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    total = len(open_dataset(data, "test", names))
    with counting_bar(console) as bar:
        task = bar.add_task("scoring", total=total)
        report = evaluate(
            ckpt,
            data,
            classes=names,
            **given(batch_size=batch_size, device=device, workers=workers),
            advance=lambda n: bar.update(task, advance=n),
            keep_scored=plots is not None,
        )
    print_report(report, console)
    if json_path is not None:
        write_json_atomic(json_path, report.to_dict())
        console.print(escape(f"wrote {json_path}"))
    if plots is not None:
        for path in write_plots(report, plots):
            console.print(escape(f"wrote {path}"))
