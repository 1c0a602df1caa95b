"""In-graph preprocessing, so a deployed model takes camera frames as OpenCV gives them."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Preprocess(nn.Module):
    """uint8 [B, H, W, 3] BGR -> float [B, 3, H, W] RGB, ImageNet-normalised."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        # BGR order, folded with the 1/255 scale: x_rgb_norm = x_bgr * scale + shift.
        scale = torch.tensor([1.0 / (255.0 * s) for s in std[::-1]]).view(1, 3, 1, 1)
        pairs = zip(mean[::-1], std[::-1], strict=True)
        shift = torch.tensor([-m / s for m, s in pairs]).view(1, 3, 1, 1)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        # Cast before permuting: TensorRT's ONNX parser takes uint8 only as a network input that
        # feeds a Cast, never as an intermediate tensor (a uint8 Transpose output fails to parse).
        # contiguous(): a channels-last view would make torch.export emit as_strided Gathers.
        x = images.to(self.scale.dtype).permute(0, 3, 1, 2).contiguous()
        return (x * self.scale + self.shift).flip(1)
