"""Decision thresholds from held-out normal image scores (normalised score = score / threshold).

Rule: 1.1 x the 99th percentile (linear interpolation) of the held-out normal image scores, per
class, and over all classes pooled for the global threshold. Why: with the few held-out images
a class usually has (often under 20), any high quantile sits between the two largest scores, so
the rule is close to the maximum but does not jump with a single outlier on larger sets; the
10 % margin covers the spread a small sample underestimates. No held-out normal image of a class
exceeds its threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metadata import HOLDOUT, Thresholds

QUANTILE = 0.99
MARGIN = 1.1
RULE = (
    f"{MARGIN} x the {QUANTILE * 100:.0f}th percentile (linear interpolation) of held-out normal "
    "image scores, per class and pooled over classes (global); normalised score = "
    "score / threshold"
)


def rule_value(scores: np.ndarray) -> float:
    return float(np.quantile(scores, QUANTILE) * MARGIN)


def fit_thresholds(scores: Sequence[float], class_names: Sequence[str]) -> Thresholds:
    """Thresholds from scores of held-out normal images and their classes; empty without any."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        return Thresholds(rule="no held-out normal images (--holdout 0): no thresholds")
    if not (np.all(np.isfinite(values)) and np.quantile(values, QUANTILE) > 0):
        return Thresholds(rule="held-out scores not finite and > 0 (diverged?): no thresholds")
    names = np.asarray(class_names)
    classes = sorted(set(class_names))
    per_class = {str(c): rule_value(values[names == c]) for c in classes}
    provenance = {
        "source": HOLDOUT,
        "images": int(values.size),
        "per_class_images": {str(c): int((names == c).sum()) for c in classes},
    }
    return Thresholds(
        global_=rule_value(values), per_class=per_class, rule=RULE, provenance=provenance
    )
