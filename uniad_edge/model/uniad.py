"""The whole UniAD model: frozen backbone + neck, reconstruction, float32 distance head."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..presets import Preset
from .backbone import build_backbone, resize_concat
from .backbone_base import Backbone
from .head import DistanceHead
from .preprocess import Preprocess
from .reconstruction import Reconstruction


@dataclass
class BackboneInfo:
    """Whether results came from an ImageNet backbone: every report must say so."""

    pretrained: bool
    weights_sha256: str | None = None


def _autocast_on(device: str) -> bool:
    """Whether autocast is active for this device type; False for types autocast does not know
    (the meta tensors that FLOP counting runs on)."""
    try:
        return torch.is_autocast_enabled(device)
    except RuntimeError:
        return False


class UniAD(nn.Module):
    """Normalised RGB [B, 3, H, W] -> (anomaly map [B, H, W], score [B]), both float32.

    `features` and `reconstruction` are public so training can cache backbone features once.
    """

    def __init__(self, preset: Preset, backbone: Backbone) -> None:
        super().__init__()
        (fh, fw), (kh, kw) = preset.feature_size, preset.neighbor_size
        if any(preset.neighbor_mask) and fh <= kh // 2 * 2 + 1 and fw <= kw // 2 * 2 + 1:
            raise ValueError(
                f"preset {preset.name!r}: a {kh}x{kw} neighbour mask hides every token of the "
                f"{fh}x{fw} grid from its centre query; use a smaller neighbor_size"
            )
        self.preset = preset
        self.backbone = backbone
        self.reconstruction = Reconstruction(preset)
        self.distance_head = DistanceHead(preset.input_size, preset.score, preset.score_pool)

    @property
    def backbone_info(self) -> BackboneInfo:
        return BackboneInfo(self.backbone.pretrained, self.backbone.weights_sha256)

    def features(self, images: Tensor) -> Tensor:
        """Backbone taps resized to the token grid and concatenated: [B, C, h, w]."""
        return resize_concat(self.backbone(images), self.preset.feature_size)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(images)
        device = features.device.type
        if not _autocast_on(device):
            return self.distance_head(features, self.reconstruction(features))
        # Float16 by construction under autocast (the torch backend's fp16): the backbone runs
        # in float16, the reconstruction and the head in float32. Its input projection and
        # attention multiply features by learned weights with no bound on the product, which
        # float16 cannot hold for every model and frame.
        with torch.autocast(device, enabled=False):
            features = features.float()
            overflowed = ~torch.isfinite(features).flatten(1).all(dim=1)
            if bool(overflowed.any()):
                # A frame whose backbone activations left float16's range (autocast has no
                # per-layer contract): that frame's features again, in float32.
                features[overflowed] = self.features(images[overflowed].float())
            return self.distance_head(features, self.reconstruction(features))


class FusedUniAD(nn.Module):
    """What gets exported: uint8 BGR [B, H, W, 3] frames in, map and score out.

    `frame_size` (height, width) and `roi` (x, y, width, height): the graph takes whole camera
    frames of that size and crops and resizes them to the preset's input itself.
    """

    def __init__(
        self,
        model: UniAD,
        frame_size: tuple[int, int] | None = None,
        roi: tuple[int, int, int, int] | None = None,
    ) -> None:
        super().__init__()
        size = None if frame_size is None else model.preset.input_size
        self.preprocess = Preprocess(model.preset.mean, model.preset.std, size, roi)
        self.frame_size = frame_size
        self.model = model

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return self.model(self.preprocess(images))


def build_model(
    preset: Preset,
    backbone_weights: str | os.PathLike[str] | None = None,
    pretrained: bool = True,
) -> UniAD:
    """A fresh model; `pretrained=False` builds a random-init backbone (say so in every report)."""
    init = "imagenet" if pretrained else "random"
    return UniAD(preset, build_backbone(preset, init, backbone_weights))
