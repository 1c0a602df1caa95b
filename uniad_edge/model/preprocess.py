"""In-graph preprocessing, so a deployed model takes camera frames as OpenCV gives them."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .resize import resize_bilinear


class Preprocess(nn.Module):
    """uint8 [B, H, W, 3] BGR -> float [B, 3, h, w] RGB, ImageNet-normalised.

    With `size` (h, w) the frame is also cropped to `roi` (x, y, width, height; None: whole
    frame) and resized bilinearly to `size` in the graph (`export --frame-size`), so a camera
    frame reaches the device as uint8 once and is prepared there.
    """

    def __init__(
        self,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        size: tuple[int, int] | None = None,
        roi: tuple[int, int, int, int] | None = None,
    ) -> None:
        super().__init__()
        # BGR order, folded with the 1/255 scale: x_rgb_norm = x_bgr * scale + shift.
        scale = torch.tensor([1.0 / (255.0 * s) for s in std[::-1]]).view(1, 3, 1, 1)
        pairs = zip(mean[::-1], std[::-1], strict=True)
        shift = torch.tensor([-m / s for m, s in pairs]).view(1, 3, 1, 1)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)
        self.size = size
        self.roi = roi

    def forward(self, images: Tensor) -> Tensor:
        # Cast first: TensorRT's ONNX parser takes uint8 only as a network input that feeds a
        # Cast, never as an intermediate tensor (a uint8 Transpose or Slice output fails).
        # contiguous(): a channels-last view would make torch.export emit as_strided Gathers.
        x = images.to(self.scale.dtype)
        if self.roi is not None:
            left, top, width, height = self.roi
            x = x[:, top : top + height, left : left + width, :]
        x = x.permute(0, 3, 1, 2).contiguous()
        if self.size is not None:
            # One Resize (by constant scales); half-pixel bilinear without antialiasing, as
            # cv2.INTER_LINEAR does.
            x = resize_bilinear(x, self.size, align_corners=False)
        return (x * self.scale + self.shift).flip(1)
