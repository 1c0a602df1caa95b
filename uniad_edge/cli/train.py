"""`uniad-edge train`: one unified model for every class of a dataset, on cached features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UniadError
from ..presets import PRESETS
from .app import app

EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C (128 + SIGINT)


def interrupted_message(out: Path) -> str:
    """What Ctrl-C leaves behind and how to go on from it."""
    last = out / "last.pth"
    if last.is_file():
        return f"training interrupted; rerun the same command with --resume to continue from {last}"
    return "training interrupted before the first checkpoint; rerun the command to start again"


def _classes(value: str | None) -> list[str] | None:
    names = [c.strip() for c in value.split(",") if c.strip()] if value else []
    return names or None


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Dataset: MVTec layout, meta file, CIFAR, folder.")],
    out: Annotated[Path, typer.Option(help="Run folder for checkpoints and the feature cache.")],
    preset: Annotated[
        str, typer.Option(help=f"One of {', '.join(PRESETS)}, or a preset .json file.")
    ] = "mvtec-224",
    epochs: Annotated[int, typer.Option(help="Epochs (official: 1000).")] = 1000,
    backbone_weights: Annotated[
        Path | None, typer.Option(help="EfficientNet-B4 ImageNet weights file.")
    ] = None,
    random_backbone: Annotated[
        bool, typer.Option(help="Random-init backbone (tests, offline demo; scores mean little).")
    ] = False,
    classes: Annotated[str | None, typer.Option(help="Comma-separated classes (all).")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per step per process.")] = 8,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-4,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 1e-4,
    step_size: Annotated[int, typer.Option(help="StepLR step in epochs.")] = 800,
    gamma: Annotated[float, typer.Option(help="StepLR factor.")] = 0.1,
    clip: Annotated[float, typer.Option(help="Gradient clipping max norm (0: off).")] = 0.1,
    jitter_scale: Annotated[float, typer.Option(help="Feature jitter scale.")] = 20.0,
    jitter_prob: Annotated[float, typer.Option(help="Feature jitter probability.")] = 1.0,
    init: Annotated[str, typer.Option(help="xavier_uniform or xavier_normal.")] = "xavier_uniform",
    save_every: Annotated[int, typer.Option(help="Also keep epoch_NNNN.pth every K epochs.")] = 100,
    holdout: Annotated[
        float, typer.Option(help="Share of good train images held out for thresholds.")
    ] = 0.1,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/last.pth.")] = False,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    seed: Annotated[int, typer.Option(help="Random seed (deterministic runs).")] = 0,
    workers: Annotated[int, typer.Option(help="Image decoding processes.")] = 0,
    cache: Annotated[str, typer.Option(help="Feature cache: memory, disk or auto.")] = "auto",
    cache_dir: Annotated[
        Path | None, typer.Option(help="Disk cache folder (default OUT/cache).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train UniAD with the official defaults; writes last.pth, best.pth and thresholds."""
    from ..train import TrainConfig
    from ..train import train as run_training

    try:
        config = TrainConfig(
            data=data,
            out=out,
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
            resume=resume,
            device=device,
            seed=seed,
            workers=workers,
            cache=cache,
            cache_dir=cache_dir,
            backbone_weights=backbone_weights,
            random_backbone=random_backbone,
            holdout=holdout,
        )
        config.resolved_preset()
    except ValueError as exc:
        raise UniadError(str(exc)) from None
    try:
        run_training(config, show_progress=progress)
    except KeyboardInterrupt:
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(escape(interrupted_message(config.out)), soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
