"""EfficientNet (lukemelas' efficientnet-pytorch) as a `Backbone`: stem + blocks 0..max(taps).

The stem and blocks keep lukemelas' module names (`_conv_stem`, `_bn0`, `_blocks.N`) so official
UniAD checkpoints and the ImageNet file load by key. Padding is the package's static "same"
padding computed for the architecture's native resolution (380 px for B4), exactly as the
official code builds it.
"""

from __future__ import annotations

from efficientnet_pytorch import EfficientNet
from torch import Tensor, nn

from ..backbones import BackboneSpec
from .backbone_base import Backbone


class EfficientNetBackbone(Backbone):
    """`spec.arch` (e.g. efficientnet-b4) without head conv and classifier."""

    def __init__(self, spec: BackboneSpec, taps: tuple[int, ...]) -> None:
        super().__init__(spec, taps)
        full = EfficientNet.from_name(spec.arch)
        # Plain x*sigmoid(x): traceable, unlike the memory-efficient autograd.Function.
        full.set_swish(memory_efficient=False)
        self._conv_stem = full._conv_stem
        self._bn0 = full._bn0
        self._swish = full._swish
        self._blocks = nn.ModuleList(full._blocks[: max(self.taps) + 1])
        self.freeze()

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.tapped(self._swish(self._bn0(self._conv_stem(x))), self._blocks)
