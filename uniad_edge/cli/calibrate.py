"""`uniad-edge calibrate`: set a model's thresholds on validation images, with a policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..calibrate.config import CalibrateConfig
from .app import app
from .options import counting_bar, default, given


@app.command()
def calibrate(
    model: Annotated[
        str,
        typer.Option(
            help="Exported .onnx, .engine or uniad-edge .pth to calibrate, or a served model's "
            "URL (grpc://host:8001/uniad) with --thresholds."
        ),
    ],
    data: Annotated[
        Path | None,
        typer.Option(help="Validation images: MVTec layout or good/ (and bad/) folders."),
    ] = None,
    target_fpr: Annotated[
        float | None, typer.Option(help="False-alarm rate on good images the line can afford.")
    ] = None,
    target_recall: Annotated[
        float | None, typer.Option(help="Share of defective images to catch (needs bad images).")
    ] = None,
    f1: Annotated[bool, typer.Option("--f1", help="Threshold with the best F1.")] = False,
    classes: Annotated[str | None, typer.Option(help="Comma-separated classes (all).")] = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="MVTec split to score (test or train).",
            show_default=default(CalibrateConfig, "split"),
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print, write nothing.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Rewrite a read-only model (its mode is kept).")
    ] = False,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Restore the previous thresholds from the history.")
    ] = False,
    backend: Annotated[
        str | None,
        typer.Option(
            help="Runtime backend to score with.", show_default=default(CalibrateConfig, "backend")
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Images per inference call.", show_default=default(CalibrateConfig, "batch_size")
        ),
    ] = None,
    thresholds: Annotated[
        Path | None,
        typer.Option(
            help="A served model's line thresholds file, as its station file names it "
            "(thresholds = ...); a model file's live beside it."
        ),
    ] = None,
) -> None:
    """Score validation images with the runtime, choose thresholds, write the line's thresholds
    file of MODEL (beside it, or --thresholds for a served model)."""
    from rich.console import Console

    from ..calibrate import calibrate as run_calibration
    from ..calibrate.calibrator import open_validation
    from ..calibrate.table import print_calibration

    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    options = given(
        data=data,
        target_fpr=target_fpr,
        target_recall=target_recall,
        f1=f1 or None,
        classes=names or None,
        split=split,
        dry_run=dry_run or None,
        force=force or None,
        rollback=rollback or None,
        backend=backend,
        batch_size=batch_size,
        thresholds=thresholds,
    )
    config = CalibrateConfig(model=model, **options)
    console = Console()
    if config.rollback:
        print_calibration(run_calibration(config), console)
        return
    samples, notes = open_validation(config)
    with counting_bar(console) as bar:
        task = bar.add_task("scoring", total=len(samples))
        result = run_calibration(config, samples, lambda n: bar.update(task, advance=n))
    result.notes[:0] = notes
    print_calibration(result, console)
