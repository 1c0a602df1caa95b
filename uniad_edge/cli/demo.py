"""`uniad-edge demo`: the whole toolkit, CPU only and offline, in a few minutes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from ..demo.config import QUICK, DemoConfig
from .app import app
from .options import default, given


@app.command()
def demo(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for data, runs, model and report.", show_default=str(DemoConfig.out)
        ),
    ] = None,
    backbone_weights: Annotated[
        Path | None,
        typer.Option(help="EfficientNet-B4 ImageNet weights (else hub cache, else random-init)."),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(min=1, help="Training epochs.", show_default=default(DemoConfig, "epochs")),
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="Tiny data and 2 epochs: checks the pipeline in about a minute.")
    ] = False,
) -> None:
    """Synthetic data -> train -> eval -> ONNX export -> runtime on a video -> bench -> report."""
    from ..demo.steps import run_demo

    settings = given(out=out, backbone_weights=backbone_weights, epochs=epochs)
    run_demo(replace(QUICK if quick else DemoConfig(), **settings))
