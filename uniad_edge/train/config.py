"""Training settings: the official UniAD defaults, every one overridable."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..presets import DEFAULT_PRESET, Preset, get_preset


def load_preset(value: str | Preset) -> Preset:
    """A Preset, a preset name, or a .json file of `Preset.to_dict()` (custom geometries)."""
    if isinstance(value, Preset):
        return value
    path = Path(value)
    if path.suffix == ".json" and path.is_file():
        return Preset.from_dict(json.loads(path.read_text()))
    return get_preset(value)


CACHE_MODES = ("memory", "disk", "auto")
INIT_METHODS = ("xavier_uniform", "xavier_normal")


@dataclass
class TrainConfig:
    """One training run. `preset` is a name or a Preset (tests pass lighter ones).

    `batch_size` is per process, as in the official code (8 per GPU). `holdout` is the share of
    each class's good training images kept back for thresholds and the best-checkpoint choice.
    """

    data: Path
    out: Path
    preset: str | Preset = DEFAULT_PRESET
    epochs: int = 1000
    classes: list[str] | None = None
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 1e-4
    step_size: int = 800
    gamma: float = 0.1
    clip: float = 0.1
    jitter_scale: float | None = None  # None: the preset's (official 20)
    jitter_prob: float | None = None  # None: the preset's (official 1)
    init: str = "xavier_uniform"
    save_every: int = 100
    resume: bool = False
    device: str = "cpu"
    seed: int = 0
    workers: int = 0
    cache: str = "auto"
    cache_dir: Path | None = None
    backbone_weights: Path | None = None
    random_backbone: bool = False
    holdout: float = 0.1
    min_holdout: int = 2

    def __post_init__(self) -> None:
        self.data = Path(self.data)
        self.out = Path(self.out)
        if self.cache_dir is not None:
            self.cache_dir = Path(self.cache_dir)
        if self.backbone_weights is not None:
            self.backbone_weights = Path(self.backbone_weights)
        checks = {
            "epochs must be >= 1": self.epochs >= 1,
            "batch size must be >= 1": self.batch_size >= 1,
            "lr must be > 0": self.lr > 0,
            "step size must be >= 1": self.step_size >= 1,
            "save-every must be >= 0": self.save_every >= 0,
            "workers must be >= 0": self.workers >= 0,
            "holdout must be in [0, 0.5]": 0 <= self.holdout <= 0.5,
            f"cache must be one of {', '.join(CACHE_MODES)}": self.cache in CACHE_MODES,
            f"init must be one of {', '.join(INIT_METHODS)}": self.init in INIT_METHODS,
            "jitter prob must be in [0, 1]": self.jitter_prob is None or 0 <= self.jitter_prob <= 1,
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ValueError(failed[0])

    def resolved_preset(self) -> Preset:
        """The preset with the jitter overrides applied."""
        preset = load_preset(self.preset)
        changes = {}
        if self.jitter_scale is not None:
            changes["jitter_scale"] = float(self.jitter_scale)
        if self.jitter_prob is not None:
            changes["jitter_prob"] = float(self.jitter_prob)
        return preset.replace(**changes) if changes else preset

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (and weights_only-loadable) record for the checkpoint meta."""
        data = dataclasses.asdict(self)
        data["preset"] = self.resolved_preset().name
        for key in ("data", "out", "cache_dir", "backbone_weights"):
            data[key] = None if data[key] is None else str(data[key])
        return data
