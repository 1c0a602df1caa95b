"""Bilinear resizes by constant scale factors, so the exported graph holds no shape arithmetic.

`F.interpolate(size=...)` exports as a Resize whose `sizes` input is Concat(Shape(x)[0:2], hw):
with a dynamic batch that is a `Shape` node with `start`/`end`, which TensorRT 8.6's parser
ignores (its Resize then gets a six-element size). A scale factor exports as a constant `scales`
input instead. Every feature map's size is known per preset, so the scales are constants.
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import Tensor


def exact_scale(source: int, target: int) -> float:
    """A float32-representable scale s with floor(source * s) == target in float32 and in
    float64 arithmetic: ONNX Runtime (and TensorRT) compute the output size from the float32
    scale, PyTorch from the double. The nearest float32 to target/source, nudged up while
    either product falls short (0.7 * 320 is 223.99998 in float32)."""
    if source < 1 or target < 1:
        raise ValueError(f"cannot resize {source} to {target} pixels")
    scale = np.float32(target / source)
    while np.float32(scale * np.float32(source)) < target or float(scale) * source < target:
        scale = np.nextafter(scale, np.float32(np.inf))
    if np.float32(scale * np.float32(source)) >= target + 1 or float(scale) * source >= target + 1:
        raise ValueError(f"no float32 scale resizes {source} to exactly {target} pixels")
    return float(scale)


def resize_bilinear(x: Tensor, size: tuple[int, int], align_corners: bool) -> Tensor:
    """Bilinear resize of [B, C, H, W] to `size` by constant scales (identity when equal).

    With align_corners the sampling positions depend only on the sizes, so the result equals
    `F.interpolate(size=size)`; half-pixel sampling uses 1/scale, within float32 rounding of
    source/target (below 1e-4 pixel at 1280 px)."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if (h, w) == tuple(size):
        return x
    scales = (exact_scale(h, size[0]), exact_scale(w, size[1]))
    return F.interpolate(
        x,
        scale_factor=scales,
        mode="bilinear",
        align_corners=align_corners,
        recompute_scale_factor=False,
    )
