"""`evaluate`: a checkpoint on a test split -> image AUROC (max/mean/std), pixel AUROC, AU-PRO.
Any other artifact the runtime runs (an exported ONNX, an engine, a served model) is scored
through `Detector`, as `calibrate` does: its own image score and map, its own thresholds.

Per class, then the mean over classes where the metric is defined. A class without anomalous
test images (or without pixel masks) gets None with a note instead of a misleading number.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..artifacts import CHECKPOINT, ENGINE, ONNX, URL, require_kind
from ..calibrate.stats import threshold_rates
from ..data import SampleSet, open_dataset
from ..metadata import DEFAULT_MAX_BATCH, Thresholds
from ..model import Checkpoint, load_checkpoint
from ..model.deployment import line_thresholds_of
from ..presets import SCORE_REDUCTIONS
from ..train.distributed import resolve_device
from .metrics import aupro, auroc
from .scoring import Scored, score_samples, score_with_detector

GRID_PER_CLASS = 2  # good and defective examples per class kept for the heatmap grid


def class_mean(values: dict[str, float | None]) -> float | None:
    defined = [v for v in values.values() if v is not None]
    return float(np.mean(defined)) if defined else None


def with_mean(values: dict[str, float | None]) -> dict[str, float | None]:
    return {"mean": class_mean(values), **values}


@dataclass
class EvalReport:
    """Metrics per class; `image_auroc` uses the preset's reduction (official: max)."""

    checkpoint: str
    preset: str
    score_reduction: str
    backbone_pretrained: bool
    classes: list[str]
    image_auroc_by_reduction: dict[str, dict[str, float | None]]
    pixel_auroc: dict[str, float | None]
    aupro: dict[str, float | None]
    counts: dict[str, dict[str, int]]
    at_threshold: dict[str, dict[str, float | None]]
    notes: list[str] = field(default_factory=list)
    scored: Scored | None = field(default=None, repr=False)

    @property
    def image_auroc(self) -> dict[str, float | None]:
        return self.image_auroc_by_reduction[self.score_reduction]

    def to_dict(self) -> dict[str, Any]:
        """The `--json` document."""
        return {
            "image_auroc": with_mean(self.image_auroc),
            "image_auroc_by_reduction": {
                r: with_mean(v) for r, v in self.image_auroc_by_reduction.items()
            },
            "pixel_auroc": with_mean(self.pixel_auroc),
            "aupro": with_mean(self.aupro),
            "score_reduction": self.score_reduction,
            "backbone_pretrained": self.backbone_pretrained,
            "checkpoint": self.checkpoint,
            "preset": self.preset,
            "counts": self.counts,
            "at_threshold": self.at_threshold,
            "notes": self.notes,
        }


def _rates(labels: np.ndarray, scores: np.ndarray, threshold: float | None) -> dict:
    """Share of normal images flagged and of anomalous images caught at the stored threshold."""
    _, false_alarm_rate, detection_rate = threshold_rates(
        scores[labels == 0], scores[labels == 1], threshold
    )
    return {
        "threshold": threshold,
        "false_alarm_rate": false_alarm_rate,
        "detection_rate": detection_rate,
    }


def metrics_for(scored: Scored, reduction: str, thresholds: Thresholds) -> dict[str, Any]:
    """All per-class numbers and notes from scored samples."""
    names = np.array([s.class_name for s in scored.samples])
    labels = np.array([s.label for s in scored.samples])
    result: dict[str, Any] = {
        "image": {r: {} for r in SCORE_REDUCTIONS if r in scored.scores},
        "pixel": {},
        "aupro": {},
        "counts": {},
        "at_threshold": {},
        "notes": [],
    }
    for name in sorted(set(names.tolist())):
        rows = np.flatnonzero(names == name)
        anomalous = int(labels[rows].sum())
        result["counts"][name] = {"good": len(rows) - anomalous, "anomalous": anomalous}
        for each in result["image"]:
            result["image"][each][name] = auroc(labels[rows], scored.scores[each][rows])
        if anomalous == 0:
            result["notes"].append(f"{name}: no anomalous test images, AUROC undefined (null)")
        masked = rows[scored.mask_known[rows]]
        masks = scored.masks[masked]
        result["pixel"][name] = auroc(masks, scored.maps[masked]) if len(masked) else None
        result["aupro"][name] = aupro(list(masks), list(scored.maps[masked]))
        if anomalous and result["pixel"][name] is None:
            result["notes"].append(f"{name}: no ground-truth masks, pixel metrics undefined (null)")
    result["at_threshold"] = rates_at(scored, reduction, thresholds)
    return result


def rates_at(scored: Scored, reduction: str, thresholds: Thresholds) -> dict[str, dict]:
    """Per class: false-alarm and detection rates of `reduction`'s scores at `thresholds`."""
    names = np.array([s.class_name for s in scored.samples])
    labels = np.array([s.label for s in scored.samples])
    found = {}
    for name in sorted(set(names.tolist())):
        rows = np.flatnonzero(names == name)
        found[name] = _rates(
            labels[rows], scored.scores[reduction][rows], thresholds.for_class(name)
        )
    return found


def evaluate(
    ckpt: str | os.PathLike[str] | Checkpoint,
    data: str | os.PathLike[str],
    *,
    classes: Sequence[str] | None = None,
    batch_size: int = DEFAULT_MAX_BATCH,
    device: str = "cpu",
    workers: int = 0,
    advance: Callable[[int], None] | None = None,
    keep_scored: bool = False,
) -> EvalReport:
    """Score the test split of `data` with `ckpt` (a checkpoint, or any artifact the runtime
    runs) and compute every metric.

    `advance(n)` is called after each batch (progress bars); `keep_scored` keeps maps and a few
    images on the report for plots.
    """
    if not isinstance(ckpt, Checkpoint):
        kind = require_kind(ckpt, (CHECKPOINT, ONNX, ENGINE, URL), "evaluate")
        if kind.name != CHECKPOINT:
            return _evaluate_artifact(str(ckpt), data, classes, batch_size, advance, keep_scored)
    checkpoint = ckpt if isinstance(ckpt, Checkpoint) else load_checkpoint(ckpt)
    model = _Evaluated(
        str(checkpoint.path),
        checkpoint.preset.name,
        checkpoint.preset.score,
        checkpoint.model.backbone.pretrained,
        checkpoint.class_names,
        line_thresholds_of(checkpoint),
    )
    test = open_dataset(data, "test", classes)
    keep = _grid_indices([s.label for s in test], [s.class_name for s in test])
    device_ = resolve_device(device)
    scored = score_samples(
        checkpoint.model, test.samples, device_, batch_size, workers, keep, advance
    )
    return _report(model, test, scored, keep_scored)


@dataclass(frozen=True)
class _Evaluated:
    """What the report says about the model, whichever way it was scored."""

    path: str
    preset: str
    reduction: str
    pretrained: bool
    class_names: list[str]
    thresholds: Thresholds


def _evaluate_artifact(
    path: str,
    data: str | os.PathLike[str],
    classes: Sequence[str] | None,
    batch_size: int,
    advance: Callable[[int], None] | None,
    keep_scored: bool,
) -> EvalReport:
    """An exported or served model, scored through the runtime's `Detector`."""
    from ..runtime.detector import Detector

    test = open_dataset(data, "test", classes)
    keep = _grid_indices([s.label for s in test], [s.class_name for s in test])
    with Detector(path) as detector:
        meta = detector.metadata
        scored = score_with_detector(detector, test.samples, batch_size, keep, advance)
    model = _Evaluated(
        path,
        meta.preset,
        meta.score_reduction,
        meta.backbone_pretrained,
        meta.class_names,
        detector.in_force.thresholds,  # the line's file beside the model, else the model's
    )
    return _report(model, test, scored, keep_scored)


def _report(model: _Evaluated, test: SampleSet, scored: Scored, keep_scored: bool) -> EvalReport:
    found = metrics_for(scored, model.reduction, model.thresholds)
    notes = [*test.warnings, *unknown_classes(model.class_names, test.class_names)]
    notes += found["notes"]
    if not model.pretrained:
        notes.insert(0, "random-init backbone: these numbers say little about real performance")
    return EvalReport(
        checkpoint=model.path,
        preset=model.preset,
        score_reduction=model.reduction,
        backbone_pretrained=model.pretrained,
        classes=test.class_names,
        image_auroc_by_reduction=found["image"],
        pixel_auroc=found["pixel"],
        aupro=found["aupro"],
        counts=found["counts"],
        at_threshold=found["at_threshold"],
        notes=notes,
        scored=scored if keep_scored else None,
    )


def unknown_classes(trained: Sequence[str], tested: Sequence[str]) -> list[str]:
    """A warning for test classes the model never saw: their scores and rates mean little, and
    they fall back to the global threshold."""
    strangers = sorted(set(tested) - set(trained)) if trained else []
    if not strangers:
        return []
    return [
        f"the model was not trained on {', '.join(strangers)} (it knows {', '.join(trained)}): "
        "their numbers use the global threshold and say little"
    ]


def _grid_indices(labels: Sequence[int], names: Sequence[str]) -> list[int]:
    """The first GRID_PER_CLASS good and defective test images of every class."""
    picked: dict[tuple[str, int], list[int]] = {}
    for index, (label, name) in enumerate(zip(labels, names, strict=True)):
        bucket = picked.setdefault((name, label), [])
        if len(bucket) < GRID_PER_CLASS:
            bucket.append(index)
    return sorted(i for bucket in picked.values() for i in bucket)
