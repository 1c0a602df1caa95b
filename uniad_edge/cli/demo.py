"""`uniad-edge demo`: the whole toolkit, CPU only and offline, in a few minutes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from ..demo.config import QUICK, DemoConfig
from ..presets import PRESETS
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
    preset: Annotated[
        str | None,
        typer.Option(
            help=f"One of {', '.join(PRESETS)}.", show_default=default(DemoConfig, "preset")
        ),
    ] = None,
    backbone_weights: Annotated[
        Path | None,
        typer.Option(
            help="The preset backbone's ImageNet weights file (else its installed weights "
            "package or the hub cache, else random-init)."
        ),
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

    settings = given(out=out, preset=preset, backbone_weights=backbone_weights, epochs=epochs)
    run_demo(replace(QUICK if quick else DemoConfig(), **settings))
