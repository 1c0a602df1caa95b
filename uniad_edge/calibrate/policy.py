"""Where to put a threshold, given validation scores of good and defective images.

A verdict is NG when score >= threshold. Each policy picks the boundary score it must keep on
the OK side (or the NG side) and puts the threshold halfway to the next distinct score seen, so
a small drift between backends (ONNX Runtime fp32, TensorRT fp16) does not flip images that sat
exactly on the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UniadError

POLICIES = ("target-fpr", "target-recall", "f1")
EDGE = 1e-6  # relative step past the boundary when no other score lies beyond it


@dataclass(frozen=True)
class Policy:
    """One of POLICIES with its target (a rate in (0, 1); None for f1)."""

    name: str
    target: float | None = None

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise UniadError(f"unknown policy {self.name!r}; use one of {', '.join(POLICIES)}")
        if self.name != "f1" and not (self.target is not None and 0 < self.target < 1):
            raise UniadError(f"--{self.name} must be a rate in (0, 1), got {self.target}")

    @property
    def needs_defective(self) -> bool:
        return self.name != "target-fpr"

    def describe(self) -> str:
        if self.name == "target-fpr":
            return f"target false-alarm rate {100 * self.target:.4g}%"
        if self.name == "target-recall":
            return f"target detection rate {100 * self.target:.4g}%"
        return "best F1 (defective = positive)"


def _above(value: float, scores: np.ndarray) -> float:
    """Halfway from `value` to the next higher score, or just above it when none is higher."""
    higher = scores[scores > value]
    if higher.size:
        return float((value + higher.min()) / 2)
    return float(value + max(abs(value), 1e-12) * EDGE)


def _below(value: float, scores: np.ndarray) -> float:
    """Halfway from `value` to the next lower score, or just below it when none is lower."""
    lower = scores[scores < value]
    if lower.size:
        return float((value + lower.max()) / 2)
    return float(value - abs(value) * EDGE)


def for_fpr(good: np.ndarray, everything: np.ndarray, target: float) -> float:
    """Lowest threshold with at most floor(target * n) good images at or above it."""
    ranked = np.sort(good)[::-1]
    allowed = min(math.floor(target * ranked.size + 1e-9), ranked.size - 1)
    return _above(float(ranked[allowed]), everything)


def for_recall(bad: np.ndarray, everything: np.ndarray, target: float) -> float:
    """Highest threshold that still calls at least ceil(target * n) defective images NG."""
    ranked = np.sort(bad)
    missed = min(math.floor((1.0 - target) * ranked.size + 1e-9), ranked.size - 1)
    return _below(float(ranked[missed]), everything)


def for_f1(good: np.ndarray, bad: np.ndarray) -> float:
    """Threshold with the best F1 over every distinct score; ties go to the higher one (fewer
    false alarms)."""
    everything = np.concatenate([good, bad])
    best, best_f1 = float(everything.max()), -1.0
    for candidate in np.unique(everything)[::-1]:
        caught = int((bad >= candidate).sum())
        false = int((good >= candidate).sum())
        f1 = 2 * caught / (2 * caught + false + (bad.size - caught))
        if f1 > best_f1:
            best, best_f1 = float(candidate), f1
    return _below(best, everything)


def choose(policy: Policy, good: np.ndarray, bad: np.ndarray) -> float | None:
    """The policy's threshold, or None when the scores cannot support it (no good images for a
    false-alarm target, no defective ones for recall or F1)."""
    good = np.asarray(good, np.float64)
    bad = np.asarray(bad, np.float64)
    everything = np.concatenate([good, bad])
    if policy.name == "target-fpr":
        return for_fpr(good, everything, policy.target) if good.size else None
    if not bad.size or (policy.name == "f1" and not good.size):
        return None
    if policy.name == "target-recall":
        return for_recall(bad, everything, policy.target)
    return for_f1(good, bad)
