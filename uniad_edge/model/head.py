"""Anomaly head: L2 distance map in float32, upsampled to the input size, reduced to a score."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .resize import resize_bilinear


def reduce_score(anomaly_map: Tensor, reduction: str, pool: int) -> Tensor:
    """[B, H, W] -> [B]; `max` is the official max of a pool x pool stride-1 average-pooled map."""
    if reduction == "max":
        pooled = F.avg_pool2d(anomaly_map.unsqueeze(1), pool, stride=1)
        return pooled.flatten(1).amax(dim=1)
    if reduction == "mean":
        return anomaly_map.flatten(1).mean(dim=1)
    if reduction == "std":
        return anomaly_map.flatten(1).std(dim=1, correction=0)
    raise ValueError(f"unknown score reduction {reduction!r}; choose max, mean or std")


class DistanceHead(nn.Module):
    """Always float32: in float16 the sum of 720 squared differences overflows (65504)."""

    def __init__(self, input_size: tuple[int, int], reduction: str, pool: int) -> None:
        super().__init__()
        self.input_size = tuple(input_size)
        self.reduction = reduction
        self.pool = pool

    def distance(self, features: Tensor, reconstructed: Tensor) -> Tensor:
        """[B, C, h, w] x2 -> [B, 1, h, w] L2 distance on the token grid."""
        diff = reconstructed.float() - features.float()
        return diff.pow(2).sum(dim=1, keepdim=True).sqrt()

    def forward(self, features: Tensor, reconstructed: Tensor) -> tuple[Tensor, Tensor]:
        grid = self.distance(features, reconstructed)
        anomaly_map = resize_bilinear(grid, self.input_size, align_corners=True).squeeze(1)
        return anomaly_map, reduce_score(anomaly_map, self.reduction, self.pool)
