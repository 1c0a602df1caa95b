"""PNG plots: ROC curves per class and a grid of heatmap overlays (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from .evaluator import EvalReport  # noqa: E402
from .metrics import roc_points  # noqa: E402

GRID_COLUMNS = 4


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def plot_roc(report: EvalReport, path: Path) -> Path:
    """Image-level (preset reduction) and pixel-level ROC curves, one line per class."""
    scored = report.scored
    if scored is None:
        raise ValueError("plots need evaluate(..., keep_scored=True)")
    names = np.array([s.class_name for s in scored.samples])
    labels = np.array([s.label for s in scored.samples])
    fig, (ax_img, ax_pix) = plt.subplots(1, 2, figsize=(11, 5))
    for name in report.classes:
        rows = np.flatnonzero(names == name)
        if report.image_auroc.get(name) is not None:
            fpr, tpr = roc_points(labels[rows], scored.scores[report.score_reduction][rows])
            ax_img.plot(fpr, tpr, label=f"{name} ({_fmt(report.image_auroc[name])})")
        masked = rows[scored.mask_known[rows]]
        if report.pixel_auroc.get(name) is not None:
            fpr, tpr = roc_points(scored.masks[masked], scored.maps[masked])
            ax_pix.plot(fpr, tpr, label=f"{name} ({_fmt(report.pixel_auroc[name])})")
    for ax, title in ((ax_img, f"image ROC ({report.score_reduction})"), (ax_pix, "pixel ROC")):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.legend(loc="lower right", fontsize=8)
    if not report.backbone_pretrained:
        fig.suptitle("random-init backbone", color="darkorange")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_heatmaps(report: EvalReport, path: Path) -> Path:
    """Kept test images with their anomaly map overlaid (one colour scale for all) and the
    ground-truth outline in white, titled with class, defect and score."""
    scored = report.scored
    if scored is None:
        raise ValueError("plots need evaluate(..., keep_scored=True)")
    indices = sorted(scored.images)
    rows = max(1, -(-len(indices) // GRID_COLUMNS))
    fig, axes = plt.subplots(rows, GRID_COLUMNS, figsize=(3 * GRID_COLUMNS, 3.2 * rows))
    axes = np.atleast_1d(axes).ravel()
    low, high = np.percentile(scored.maps[indices], [1, 99.5]) if indices else (0.0, 1.0)
    for ax in axes:
        ax.axis("off")
    for ax, index in zip(axes, indices, strict=False):
        sample = scored.samples[index]
        rgb = cv2.cvtColor(scored.images[index], cv2.COLOR_BGR2RGB)
        ax.imshow(rgb)
        heat = ax.imshow(scored.maps[index], cmap="jet", alpha=0.45, vmin=low, vmax=high)
        if scored.mask_known[index] and scored.masks[index].any():
            ax.contour(scored.masks[index], levels=[0.5], colors="white", linewidths=1)
        score = scored.scores[report.score_reduction][index]
        ax.set_title(f"{sample.class_name}/{sample.defect}\nscore {score:.3f}", fontsize=8)
    fig.colorbar(heat if indices else None, ax=axes.tolist(), shrink=0.6, label="anomaly")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_plots(report: EvalReport, folder: Path) -> list[Path]:
    return [plot_roc(report, folder / "roc.png"), plot_heatmaps(report, folder / "heatmaps.png")]
