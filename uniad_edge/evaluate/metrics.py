"""Image AUROC, pixel AUROC and AU-PRO. ROC/AUC come from scikit-learn; AU-PRO, which no
well-kept library provides, is computed exactly from sorted pixel scores (no threshold grid).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from sklearn.metrics import auc, roc_auc_score, roc_curve

PRO_MAX_FPR = 0.3


def auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve; None when only one label is present (it is undefined)."""
    labels = np.asarray(labels).ravel()
    if labels.size == 0 or labels.min() == labels.max():
        return None
    return float(roc_auc_score(labels, np.asarray(scores).ravel()))


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) for plotting."""
    fpr, tpr, _ = roc_curve(np.asarray(labels).ravel(), np.asarray(scores).ravel())
    return fpr, tpr


def pro_curve(
    masks: Sequence[np.ndarray], maps: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, PRO) at every distinct score, from +inf down.

    PRO at a threshold is the mean over all ground-truth regions (8-connected components of
    every mask) of the share of the region's pixels scoring at or above it; FPR is the share of
    all normal pixels (of every image) at or above it. Sorting all pixels once gives both curves
    exactly: a normal pixel adds 1 / #normal to FPR, a region pixel adds 1 / (|region| * #regions)
    to PRO.
    """
    weights_fp, weights_pro, scores = [], [], []
    regions = 0
    labelled = []
    for mask in masks:
        count, components = cv2.connectedComponents(
            (np.asarray(mask) > 0).astype(np.uint8), connectivity=8
        )
        labelled.append((components, count - 1))
        regions += count - 1
    normal = sum(int((np.asarray(m) == 0).sum()) for m in masks)
    if regions == 0 or normal == 0:
        raise ValueError("AU-PRO needs at least one anomalous region and one normal pixel")
    for (components, count), score_map in zip(labelled, maps, strict=True):
        flat = components.ravel()
        sizes = np.bincount(flat, minlength=count + 1).astype(np.float64)
        in_region = flat > 0
        pro_weight = np.where(in_region, 1.0 / (sizes[flat] * regions), 0.0)
        weights_pro.append(pro_weight)
        weights_fp.append(np.where(in_region, 0.0, 1.0 / normal))
        scores.append(np.asarray(score_map, dtype=np.float64).ravel())
    score = np.concatenate(scores)
    order = np.argsort(-score, kind="stable")
    fpr = np.cumsum(np.concatenate(weights_fp)[order])
    pro = np.cumsum(np.concatenate(weights_pro)[order])
    distinct = np.r_[np.diff(score[order]) != 0, True]  # last index of each tie group
    return np.r_[0.0, fpr[distinct]], np.r_[0.0, pro[distinct]]


def aupro(
    masks: Sequence[np.ndarray], maps: Sequence[np.ndarray], max_fpr: float = PRO_MAX_FPR
) -> float | None:
    """Area under the PRO curve for FPR in [0, max_fpr], divided by max_fpr (1.0 is perfect).

    None when there is no anomalous region (or no normal pixel) to measure.
    """
    try:
        fpr, pro = pro_curve(masks, maps)
    except ValueError:
        return None
    fpr = np.minimum(fpr, 1.0)  # cumulative sums may overshoot 1 by rounding
    cut = np.searchsorted(fpr, max_fpr, side="right")
    if cut < len(fpr):
        f0, f1, p0, p1 = fpr[cut - 1], fpr[cut], pro[cut - 1], pro[cut]
        end = p0 if f1 == f0 else p0 + (p1 - p0) * (max_fpr - f0) / (f1 - f0)
        fpr, pro = np.r_[fpr[:cut], max_fpr], np.r_[pro[:cut], end]
    return float(auc(fpr, pro) / max_fpr)
