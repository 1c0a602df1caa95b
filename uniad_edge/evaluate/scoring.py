"""Score a test split with a checkpoint (or, through the runtime's `Detector`, any artifact it
runs): full-resolution maps, image scores, masks.

Maps are at the model's input size (the distance grid upsampled by the output stride), and
ground-truth masks are resized to it with nearest neighbour, as in the official evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ..data import Sample, load_image, load_mask
from ..metadata import DEFAULT_MAX_BATCH
from ..model import UniAD
from ..model.head import reduce_score
from ..model.preprocess import Preprocess
from ..presets import SCORE_REDUCTIONS
from ..train.images import ImageSet, resize_image, resize_mask

if TYPE_CHECKING:
    from ..runtime.detector import Detector


class LabelledSet(ImageSet):
    """Index -> (image, mask at input size (zeros if unknown), mask known, index)."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, bool, int]:  # type: ignore[override]
        sample = self.samples[index]
        image = load_image(sample)
        mask = load_mask(sample, image.shape)
        known = mask is not None
        resized = resize_mask(mask, self.size) if known else np.zeros(self.size, np.uint8)
        pixels = np.ascontiguousarray(resize_image(image, self.size))
        return torch.from_numpy(pixels), torch.from_numpy(resized), known, index


@dataclass
class Scored:
    """Everything the metrics, tables and plots need, in the samples' order."""

    samples: list[Sample]
    scores: dict[str, np.ndarray]  # reduction -> [N]
    maps: np.ndarray  # [N, H, W] float32
    masks: np.ndarray  # [N, H, W] uint8 (zeros where unknown)
    mask_known: np.ndarray  # [N] bool
    images: dict[int, np.ndarray] = field(default_factory=dict)  # kept for the heatmap grid


@torch.no_grad()
def score_samples(
    model: UniAD,
    samples: Sequence[Sample],
    device: torch.device,
    batch_size: int = DEFAULT_MAX_BATCH,
    workers: int = 0,
    keep_images: Sequence[int] = (),
    advance: Callable[[int], None] | None = None,
) -> Scored:
    """Run the whole model (preprocess, backbone, reconstruction, head) over `samples`."""
    preset = model.preset
    model = model.to(device).eval()
    preprocess = Preprocess(preset.mean, preset.std).to(device)
    count, (h, w) = len(samples), preset.input_size
    maps = np.empty((count, h, w), np.float32)
    masks = np.empty((count, h, w), np.uint8)
    known = np.empty(count, bool)
    scores = {r: np.empty(count, np.float64) for r in SCORE_REDUCTIONS}
    keep, images = set(keep_images), {}
    loader = DataLoader(
        LabelledSet(samples, preset.input_size), batch_size=batch_size, num_workers=workers
    )
    for batch, mask, mask_known, index in loader:
        anomaly_map, _ = model(preprocess(batch.to(device)))
        rows = index.numpy()
        for reduction in SCORE_REDUCTIONS:
            reduced = reduce_score(anomaly_map, reduction, preset.score_pool)
            scores[reduction][rows] = reduced.double().cpu().numpy()
        maps[rows] = anomaly_map.cpu().numpy()
        masks[rows] = mask.numpy()
        known[rows] = mask_known.numpy()
        images.update({int(i): batch[j].numpy() for j, i in enumerate(rows) if int(i) in keep})
        if advance is not None:
            advance(len(rows))
    return Scored(list(samples), scores, maps, masks, known, images)


def score_with_detector(
    detector: Detector,
    samples: Sequence[Sample],
    batch_size: int = DEFAULT_MAX_BATCH,
    keep_images: Sequence[int] = (),
    advance: Callable[[int], None] | None = None,
) -> Scored:
    """Score `samples` as the station would (an exported ONNX, an engine, a served model): the
    artifact's own image score (its reduction only) and its map at the model's input size."""
    reduction = detector.metadata.score_reduction
    h, w = detector.input_size
    count = len(samples)
    maps = np.empty((count, h, w), np.float32)
    masks = np.zeros((count, h, w), np.uint8)
    known = np.zeros(count, bool)
    scores = {reduction: np.empty(count, np.float64)}
    keep, images = set(keep_images), {}
    for start in range(0, count, batch_size):
        chunk = range(start, min(start + batch_size, count))
        frames = [load_image(samples[i]) for i in chunk]
        for i, frame, found in zip(chunk, frames, detector.score(frames), strict=True):
            scores[reduction][i] = found.score
            maps[i] = found.model_map
            mask = load_mask(samples[i], frame.shape)
            if mask is not None:
                masks[i], known[i] = resize_mask(mask, (h, w)), True
            if i in keep:
                images[i] = np.ascontiguousarray(resize_image(frame, (h, w)))
        if advance is not None:
            advance(len(chunk))
    return Scored(list(samples), scores, maps, masks, known, images)
