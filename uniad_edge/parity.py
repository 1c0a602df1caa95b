"""How far one evaluation of a model is from another on the same frames, on the reference
map's own scale: the one measure export parity, the float16 drift checks (ONNX and PyTorch
autocast) and the GPU check all judge by, so a limit means the same number everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Limits:
    """How far a candidate may be from the reference, judged on the reference map's own scale
    (its L2 norm and its range), so that a map with a large offset or peak is not held to a
    tighter limit than float32 arithmetic can meet."""

    map_rel_l2: float  # ||map diff||_2 / ||reference map||_2
    map_of_range: float  # max |map diff| / (max - min of the reference map)
    score_of_range: float | None  # max |score diff| / (max - min of the reference map)


# Measured float32 noise between correct evaluations at 1024 tokens (mvtec-512): ORT vs PyTorch
# of a random-init model, relative L2 1.1e-7 and 5.4e-6 of the range; an official-layout
# checkpoint with random weights, 7.5e-5 of the map's maximum (~5e-4 of its range). A wrong
# weight, mask or layout is off by percents. Tests: tests/test_export_parity.py.
EXPORT_LIMITS = Limits(map_rel_l2=1e-3, map_of_range=1e-2, score_of_range=1e-2)
HALF_LIMITS = Limits(map_rel_l2=1e-2, map_of_range=5e-2, score_of_range=None)


@dataclass(frozen=True)
class Parity:
    """Differences between two evaluations of the same frames at one batch size."""

    batch: int
    map_abs: float
    map_rel_l2: float
    map_of_range: float
    score_abs: float
    score_of_range: float
    finite: bool = True

    def failures(self, limits: Limits) -> list[str]:
        """Each limit this comparison breaks, in words; empty when it is within all."""
        broken = [] if self.finite else ["non-finite values"]
        if self.map_rel_l2 > limits.map_rel_l2:
            broken.append(f"map relative L2 {self.map_rel_l2:.2e} > {limits.map_rel_l2:g}")
        if self.map_of_range > limits.map_of_range:
            broken.append(
                f"map max error {self.map_of_range:.2e} of its range > {limits.map_of_range:g}"
            )
        if limits.score_of_range is not None and self.score_of_range > limits.score_of_range:
            limit = limits.score_of_range
            broken.append(f"score max error {self.score_of_range:.2e} of the map range > {limit:g}")
        return broken

    def describe(self) -> str:
        return (
            f"batch {self.batch}: map relative L2 {self.map_rel_l2:.2e}, max abs "
            f"{self.map_abs:.2e} ({self.map_of_range:.2e} of its range), score max abs "
            f"{self.score_abs:.2e} ({self.score_of_range:.2e} of the map range)"
        )


def compare(
    reference: tuple[np.ndarray, np.ndarray], candidate: tuple[np.ndarray, np.ndarray]
) -> Parity:
    """Differences of (map, score) pairs on the reference map's scale (see `Limits`)."""
    (map_ref, score_ref), (map_new, score_new) = reference, candidate
    # A non-finite reference is no reference: NaN differences compare False with every limit.
    finite = all(bool(np.isfinite(a).all()) for a in (map_ref, score_ref, map_new, score_new))
    ref = map_ref.astype(np.float64)
    diff = map_new.astype(np.float64) - ref
    score_abs = float(np.abs(score_new.astype(np.float64) - score_ref).max())
    tiny = 1e-12
    span = max(float(ref.max() - ref.min()), float(np.abs(ref).max()) * 1e-6, tiny)
    return Parity(
        batch=int(map_ref.shape[0]),
        map_abs=float(np.abs(diff).max()),
        map_rel_l2=float(np.linalg.norm(diff)) / max(float(np.linalg.norm(ref)), tiny),
        map_of_range=float(np.abs(diff).max()) / span,
        score_abs=score_abs,
        score_of_range=score_abs / span,
        finite=finite,
    )


def per_frame(
    reference: tuple[np.ndarray, np.ndarray], candidate: tuple[np.ndarray, np.ndarray]
) -> list[Parity]:
    """`compare` of each frame alone: a batch-wide figure can hide one bad frame."""
    return [
        compare(*((maps[i : i + 1], scores[i : i + 1]) for maps, scores in (reference, candidate)))
        for i in range(len(reference[0]))
    ]


def worst(frames: list[Parity]) -> int:
    """Index of the frame with the largest map drift, a non-finite one first."""
    return max(
        range(len(frames)),
        key=lambda i: frames[i].map_rel_l2 if frames[i].finite else float("inf"),
    )
