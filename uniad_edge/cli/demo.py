"""`uniad-edge demo`: the whole toolkit, CPU only and offline, in a few minutes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from .app import app


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for data, runs, model and report.")] = Path(
        "runs/demo"
    ),
    backbone_weights: Annotated[
        Path | None,
        typer.Option(help="EfficientNet-B4 ImageNet weights (else hub cache, else random-init)."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Training epochs.")] = None,
    quick: Annotated[
        bool, typer.Option(help="Tiny data and 2 epochs: checks the pipeline in about a minute.")
    ] = False,
) -> None:
    """Synthetic data -> train -> eval -> ONNX export -> runtime on a video -> bench -> report."""
    from ..demo.steps import QUICK, DemoConfig, run_demo

    config = replace(QUICK if quick else DemoConfig(), out=out, backbone_weights=backbone_weights)
    if epochs is not None:
        config = replace(config, epochs=epochs)
    run_demo(config)
