"""The INT8 gate: what quantization does to the verdicts, measured on held-out images.

The score is a feature distance, so quantization noise lands in it directly; the gate compares
ONNX Runtime on the Q/DQ graph with the float32 graph on images the calibration never saw:
verdict agreement (NG is score >= threshold), the 99th percentile of |score change| as a
fraction of the threshold, and, where the folder has defects, the image AUROC change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..metadata import Thresholds

PROXY = "proxy: the largest float32 score on the held-out good images (the model has none)"


@dataclass(frozen=True)
class GateLimits:
    """What an INT8 graph must keep: `agreement` share of verdicts, `score_change` (99th
    percentile of |change| / threshold) and `auroc_drop` (only where defects exist)."""

    agreement: float = 0.995
    score_change: float = 0.1
    auroc_drop: float = 0.01


@dataclass(frozen=True)
class Gate:
    """One gate measurement; `worst` is the image whose score moved most (flipped first)."""

    images: int
    defective: int
    agreement: float
    p99_score_change: float
    max_score_change: float
    auroc_float32: float | None
    auroc_int8: float | None
    worst: str
    worst_change: float
    threshold: str

    @property
    def auroc_change(self) -> float | None:
        if self.auroc_float32 is None or self.auroc_int8 is None:
            return None
        return self.auroc_int8 - self.auroc_float32

    def misses(self, limits: GateLimits) -> list[str]:
        """Each limit this measurement breaks, as text for the refusal."""
        broken = []
        if self.agreement < limits.agreement:
            broken.append(
                f"{self.agreement:.1%} of verdicts agree with float32 (gate {limits.agreement:.1%})"
            )
        if self.p99_score_change > limits.score_change:
            broken.append(
                f"99th percentile score change {self.p99_score_change:.3f} of the threshold "
                f"(gate {limits.score_change})"
            )
        change = self.auroc_change
        if change is not None and -change > limits.auroc_drop:
            broken.append(f"AUROC fell {-change:.4f} (gate {limits.auroc_drop})")
        return broken

    def describe(self) -> str:
        """One line for the export summary and `info`."""
        auroc = self.auroc_change
        text = (
            f"{self.agreement:.1%} of {self.images} verdicts agree with float32, p99 score "
            f"change {self.p99_score_change:.3f} of the threshold"
        )
        return text if auroc is None else f"{text}, AUROC change {auroc:+.4f}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "auroc_change": self.auroc_change}


def thresholds_for(
    thresholds: Thresholds, classes: list[str], float32: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, str]:
    """Each held-out image's threshold (its class's, else the global one) and where they come
    from; without thresholds a proxy (`PROXY`), so the gate still judges the change."""
    values = [thresholds.for_class(c) for c in classes]
    if all(v is not None for v in values):
        return np.array(values, np.float64), "model"
    good = float32[labels == 0]
    proxy = float(good.max()) if good.size else float(np.abs(float32).max())
    return np.full(len(classes), max(proxy, np.finfo(np.float32).tiny)), PROXY


def measure(
    float32: np.ndarray,
    int8: np.ndarray,
    labels: np.ndarray,
    thresholds: np.ndarray,
    source: str,
    paths: list[str],
) -> Gate:
    """The gate's numbers for one pair of score vectors on the same images."""
    from ..evaluate.metrics import auroc

    finite = np.isfinite(int8)
    change = np.where(finite, np.abs(int8 - float32) / thresholds, np.inf)
    flipped = ((float32 >= thresholds) != (int8 >= thresholds)) | ~finite
    order = np.lexsort((change, flipped))  # flipped first, then by size of the change
    worst = int(order[-1])
    return Gate(
        images=len(float32),
        defective=int(labels.sum()),
        agreement=float(1.0 - flipped.mean()),
        p99_score_change=float(np.quantile(change, 0.99, method="higher")),
        max_score_change=float(change.max()),
        auroc_float32=auroc(labels, float32),
        auroc_int8=auroc(labels, np.where(finite, int8, np.finfo(np.float64).max)),  # NG
        worst=paths[worst],
        worst_change=float(change[worst]),
        threshold=source,
    )
