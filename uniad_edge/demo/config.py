"""What the demo makes and how big: one dataclass, the `uniad-edge demo` defaults and QUICK."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..presets import DEFAULT_PRESET, Preset


@dataclass
class DemoConfig:
    """Sizes chosen so the full demo ends in well under 10 minutes on 2 CPU cores."""

    out: Path = Path("runs/demo")
    backbone_weights: Path | None = None
    preset: str | Preset = DEFAULT_PRESET
    classes: int = 5
    train_per_class: int = 40
    test_per_class: int = 20
    size: int = 256
    epochs: int = 5
    parts_per_class: int = 2
    frames_per_part: int = 3
    bench_runs: int = 10
    seed: int = 0
    validation_per_class: int = 40  # images per class `calibrate` scores (about half good)
    target_fpr: float = 0.05


QUICK = DemoConfig(
    validation_per_class=6,
    classes=2,
    train_per_class=10,
    test_per_class=4,
    size=128,
    epochs=2,
    parts_per_class=1,
    frames_per_part=2,
    bench_runs=2,
)
