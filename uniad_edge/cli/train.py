"""`uniad-edge train`: one unified model for every class of a dataset, on cached features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UniadError
from ..presets import PRESETS
from ..train.config import TrainConfig
from .app import app
from .options import default, given


def _classes(value: str | None) -> list[str] | None:
    names = [c.strip() for c in value.split(",") if c.strip()] if value else []
    return names or None


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Dataset: MVTec layout, meta file, CIFAR, folder.")],
    out: Annotated[Path, typer.Option(help="Run folder for checkpoints and the feature cache.")],
    preset: Annotated[
        str | None,
        typer.Option(
            help=f"One of {', '.join(PRESETS)}, or a preset .json file.",
            show_default=default(TrainConfig, "preset"),
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs.", show_default=default(TrainConfig, "epochs"))
    ] = None,
    backbone_weights: Annotated[
        Path | None, typer.Option(help="The backbone's ImageNet weights file.")
    ] = None,
    random_backbone: Annotated[
        bool, typer.Option(help="Random-init backbone (tests, offline demo; scores mean little).")
    ] = False,
    classes: Annotated[str | None, typer.Option(help="Comma-separated classes (all).")] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Images per step per process.", show_default=default(TrainConfig, "batch_size")
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="AdamW learning rate.", show_default=default(TrainConfig, "lr")),
    ] = None,
    weight_decay: Annotated[
        float | None,
        typer.Option(help="AdamW weight decay.", show_default=default(TrainConfig, "weight_decay")),
    ] = None,
    step_size: Annotated[
        int | None,
        typer.Option(help="StepLR step in epochs.", show_default=default(TrainConfig, "step_size")),
    ] = None,
    gamma: Annotated[
        float | None,
        typer.Option(help="StepLR factor.", show_default=default(TrainConfig, "gamma")),
    ] = None,
    clip: Annotated[
        float | None,
        typer.Option(
            help="Gradient clipping max norm (0: off).", show_default=default(TrainConfig, "clip")
        ),
    ] = None,
    jitter_scale: Annotated[
        float | None, typer.Option(help="Feature jitter scale.", show_default="the preset's")
    ] = None,
    jitter_prob: Annotated[
        float | None,
        typer.Option(help="Feature jitter probability.", show_default="the preset's"),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            help="xavier_uniform or xavier_normal.", show_default=default(TrainConfig, "init")
        ),
    ] = None,
    save_every: Annotated[
        int | None,
        typer.Option(
            help="Also keep epoch_NNNN.pth every K epochs.",
            show_default=default(TrainConfig, "save_every"),
        ),
    ] = None,
    holdout: Annotated[
        float | None,
        typer.Option(
            help="Share of good train images held out for thresholds.",
            show_default=default(TrainConfig, "holdout"),
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/last.pth.")] = False,
    device: Annotated[
        str | None,
        typer.Option(help="cpu or cuda.", show_default=default(TrainConfig, "device")),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Random seed (deterministic runs).", show_default=default(TrainConfig, "seed")
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Image decoding processes.", show_default=default(TrainConfig, "workers")
        ),
    ] = None,
    cache: Annotated[
        str | None,
        typer.Option(
            help="Feature cache: memory, disk or auto.", show_default=default(TrainConfig, "cache")
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Disk cache folder (default OUT/cache).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train UniAD with the official defaults; writes last.pth, best.pth and thresholds."""
    from ..train import train as run_training

    try:
        config = TrainConfig(
            data=data,
            out=out,
            **given(
                preset=preset,
                epochs=epochs,
                classes=_classes(classes),
                batch_size=batch_size,
                lr=lr,
                weight_decay=weight_decay,
                step_size=step_size,
                gamma=gamma,
                clip=clip,
                jitter_scale=jitter_scale,
                jitter_prob=jitter_prob,
                init=init,
                save_every=save_every,
                resume=resume or None,
                device=device,
                seed=seed,
                workers=workers,
                cache=cache,
                cache_dir=cache_dir,
                backbone_weights=backbone_weights,
                random_backbone=random_backbone or None,
                holdout=holdout,
            ),
        )
        config.resolved_preset()
    except ValueError as exc:
        raise UniadError(str(exc)) from None
    run_training(config, show_progress=progress)
