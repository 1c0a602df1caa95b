"""Images as the deployed model sees them: uint8 BGR resized (bilinear) to the preset's input.

The runtime resizes camera frames the same way (cv2 INTER_LINEAR) and normalises inside the
graph, so training, evaluation and deployment see identical pixels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..data import Sample, load_image


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest neighbour keeps the mask binary."""
    h, w = size
    if mask.shape[:2] == (h, w):
        return mask
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)


class ImageSet(Dataset):
    """Index -> (uint8 BGR [H, W, 3] tensor, index)."""

    def __init__(self, samples: Sequence[Sample], size: tuple[int, int]) -> None:
        self.samples = list(samples)
        self.size = size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = resize_image(load_image(self.samples[index]), self.size)
        return torch.from_numpy(np.ascontiguousarray(image)), index


def iterate_images(
    samples: Sequence[Sample], size: tuple[int, int], batch_size: int, workers: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """Batches (uint8 BGR [B, H, W, 3], indices [B]) in order; decoding runs in `workers`."""
    loader = DataLoader(
        ImageSet(samples, size), batch_size=batch_size, shuffle=False, num_workers=workers
    )
    yield from loader
