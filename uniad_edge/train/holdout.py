"""Held-out normal images: kept out of training so thresholds see scores of unseen images.

A model scores its own training images lower than new ones, so thresholds fitted on training
images would flag normal production parts. The held-out images are spread evenly over each
class's sorted file list, independent of the seed, so every run holds out the same files.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..data import Sample


def holdout_count(count: int, fraction: float, minimum: int) -> int:
    """max(minimum, round(fraction * count)), leaving at least one image to train on."""
    if fraction <= 0 or count < 2:
        return 0
    return min(max(minimum, round(fraction * count)), count - 1)


def split_holdout(
    samples: Sequence[Sample], fraction: float, minimum: int
) -> tuple[list[int], list[int]]:
    """Indices into `samples`: (train, held out), both in the samples' order."""
    by_class: dict[str, list[int]] = {}
    for index, sample in enumerate(samples):
        by_class.setdefault(sample.class_name, []).append(index)
    held: set[int] = set()
    for indices in by_class.values():
        k = holdout_count(len(indices), fraction, minimum)
        held.update(indices[int((i + 0.5) * len(indices) / k)] for i in range(k))
    train = [i for i in range(len(samples)) if i not in held]
    return train, sorted(held)
