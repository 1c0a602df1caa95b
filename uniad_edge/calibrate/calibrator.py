"""Score validation images with the runtime, choose thresholds by a policy, store them.

Scores come from the same `Detector` that `uniad-edge run` uses (ONNX Runtime for an .onnx,
TensorRT for an engine, PyTorch for a checkpoint), so a threshold set here sits on exactly the
scores the station will see.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import line_thresholds
from ..artifacts import (
    RATES,
    WARN_FALSE_ALARM_RATE,
    lock_artifact,
    rate_warning,
    read_thresholds,
    write_thresholds,
)
from ..data import Sample, load_image, open_dataset
from ..errors import UniadError
from ..metadata import CALIBRATION, Thresholds
from ..redact import redact_url
from .config import CalibrateConfig
from .inputs import contradictory_labels, unfit_note, unreadable_error
from .policy import Policy, choose
from .stats import images_needed, threshold_rates, upper_bound

if TYPE_CHECKING:
    from ..runtime.detector import Detector

GLOBAL = "global"
ALL_GOOD = 1.0  # plain good/bad folders: every good image is a validation image


@dataclass
class Row:
    """One class (or the pooled global set): the chosen threshold and what it does on the data."""

    name: str
    good: int
    defective: int
    threshold: float | None
    previous: float | None
    false_alarms: int | None = None
    false_alarm_rate: float | None = None
    detection_rate: float | None = None
    fpr_bound: float | None = None
    previous_false_alarm_rate: float | None = None
    previous_detection_rate: float | None = None
    warning: str | None = None
    calibrated: bool = False  # the policy chose this row's threshold here
    lowest_good: float | None = None  # the lowest good score, for the "below every good" check

    def rates(self) -> dict:
        """What this row's threshold did on the calibration images, kept in the provenance so
        `--rollback` and the station can show it later."""
        return {
            "good": self.good,
            "defective": self.defective,
            "false_alarm_rate": self.false_alarm_rate,
            "detection_rate": self.detection_rate,
            "lowest_good": self.lowest_good,
        }


@dataclass
class Calibration:
    """What `calibrate` found and (unless a dry run) wrote."""

    model: Path | str
    policy: Policy | None
    rows: list[Row]
    before: Thresholds
    after: Thresholds
    notes: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    confidence: float = 0.95
    dry_run: bool = False


def _row(
    name: str,
    good: np.ndarray,
    bad: np.ndarray,
    policy: Policy,
    previous: float | None,
    confidence: float,
    warn_rate: float = WARN_FALSE_ALARM_RATE,
) -> Row:
    chosen = choose(policy, good, bad)
    if chosen is not None and not chosen > 0:
        chosen = None
    false, fpr, detected = threshold_rates(good, bad, chosen)
    _, old_fpr, old_detected = threshold_rates(good, bad, previous)
    row = Row(
        name=name,
        good=int(good.size),
        defective=int(bad.size),
        threshold=chosen,
        previous=previous,
        false_alarms=false,
        false_alarm_rate=fpr,
        detection_rate=detected,
        fpr_bound=upper_bound(false, good.size, confidence) if false is not None else None,
        previous_false_alarm_rate=old_fpr,
        previous_detection_rate=old_detected,
        calibrated=chosen is not None,
        lowest_good=float(good.min()) if good.size else None,
    )
    if chosen is None:
        need = "defective" if policy.needs_defective and not bad.size else "good"
        row.warning = f"no {need} images: threshold not set, the previous one is kept"
    elif policy.name == "target-fpr" and good.size < images_needed(policy.target, confidence):
        row.warning = (
            f"{good.size} good images: even with no false alarm the {confidence:.0%} bound is "
            f"{upper_bound(0, good.size, confidence):.1%}; about "
            f"{images_needed(policy.target, confidence)} are needed to bound it near "
            f"{policy.target:.1%}"
        )
    if chosen is not None:
        loud = rate_warning(chosen, row.rates(), warn_rate)
        row.warning = "; ".join(filter(None, (loud, row.warning))) or None
    return row


def _kept_global(
    scores: np.ndarray, labels: np.ndarray, before: Thresholds, used: list[str], missing: list[str]
) -> Row:
    """The global row when only some of the model's classes were calibrated: the previous
    threshold stays (a station on another class falls back to it), measured on these images."""
    good, bad = scores[labels == 0], scores[labels == 1]
    false, fpr, detected = threshold_rates(good, bad, before.global_)
    return Row(
        name=GLOBAL,
        good=int(good.size),
        defective=int(bad.size),
        threshold=before.global_,
        previous=before.global_,
        false_alarms=false,
        false_alarm_rate=fpr,
        detection_rate=detected,
        previous_false_alarm_rate=fpr,
        previous_detection_rate=detected,
        warning=(
            f"kept, not recalibrated: these images cover {', '.join(used)} only, not "
            f"{', '.join(missing)}, which fall back to the global threshold; to recalibrate "
            "it, calibrate on all classes (images of each, without --classes)"
        ),
    )


def calibrate_scores(
    scores: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    policy: Policy,
    before: Thresholds,
    provenance: dict,
    confidence: float = 0.95,
    model_classes: Sequence[str] | None = None,
    warn_rate: float = WARN_FALSE_ALARM_RATE,
) -> tuple[Thresholds, list[Row]]:
    """New thresholds (per class and pooled global) from scored validation images.

    Classes the policy cannot serve keep their previous threshold; the old set goes into the
    history. When the images cover only some of `model_classes`, the global threshold (and its
    provenance, under "global") is kept: pooled from other products it would be wrong for the
    classes that fall back to it. The classes used are recorded as provenance["classes"].
    """
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels)
    names_array = np.asarray(names)
    used = sorted(set(names_array.tolist()))
    missing = sorted(set(model_classes or ()) - set(used))
    provenance = {**provenance, "classes": used}
    rows = []
    for name in used:
        mine = names_array == name
        good, bad = scores[mine & (labels == 0)], scores[mine & (labels == 1)]
        rows.append(_row(name, good, bad, policy, before.for_class(name), confidence, warn_rate))
    if missing:
        rows.append(_kept_global(scores, labels, before, used, missing))
        global_ = before.global_
        kept = before.provenance.get("global", before.provenance)
        provenance["global"] = dict(kept)
        scope = f"per class on {', '.join(used)}; the global threshold is kept from before"
    else:
        pooled = _row(
            GLOBAL, scores[labels == 0], scores[labels == 1], policy, before.global_, confidence,
            warn_rate,
        )  # fmt: skip
        rows.append(pooled)
        global_ = pooled.threshold if pooled.threshold is not None else before.global_
        scope = "per class and pooled over classes (global)"
    per_class = dict(before.per_class)
    per_class.update({r.name: r.threshold for r in rows[:-1] if r.threshold is not None})
    provenance[RATES] = {r.name: r.rates() for r in rows if r.calibrated}
    new = Thresholds(
        global_=global_,
        per_class=per_class,
        rule=(
            f"{policy.describe()} on calibration images, {scope}, halfway to the next distinct "
            "score; normalised score = score / threshold"
        ),
        provenance=provenance,
    )
    return before.superseded_by(new, provenance.get("date", line_thresholds.now())), rows


def check_finite(scores: np.ndarray, samples: Sequence[Sample]) -> None:
    """A NaN or infinite score cannot place a threshold: name the images, write nothing."""
    broken = [str(s.path) for s, v in zip(samples, scores, strict=True) if not np.isfinite(v)]
    if broken:
        shown = ", ".join(broken[:5]) + (f" and {len(broken) - 5} more" if len(broken) > 5 else "")
        raise UniadError(
            f"{len(broken)} image(s) scored NaN or infinity ({shown}); the model or these images "
            "are broken (re-export the model, check the files): nothing was written"
        )


def score_samples(
    detector: Detector,
    samples: Sequence[Sample],
    batch_size: int,
    advance: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list[tuple[Path, str]]]:
    """Raw image scores of `samples`, read and scored batch by batch, and the images the model
    cannot judge (with why). Every image is read before an unreadable one is reported, so one
    error names them all."""
    scores: list[float] = []
    unfit: list[tuple[Path, str]] = []
    unreadable: list[Path] = []
    for start in range(0, len(samples), batch_size):
        chunk, images = samples[start : start + batch_size], []
        for sample in chunk:
            try:
                images.append(load_image(sample))
            except UniadError:
                unreadable.append(sample.path)
        if not unreadable:
            detections = detector.score(images)  # scores only: calibrate sets the threshold
            scores += [d.score for d in detections]
            unfit += [(s.path, d.error) for s, d in zip(chunk, detections, strict=True) if d.error]
        if advance is not None:
            advance(len(chunk))
    if unreadable:
        raise unreadable_error(unreadable)
    return np.asarray(scores, np.float64), unfit


def open_validation(config: CalibrateConfig) -> tuple[list[Sample], list[str]]:
    """The validation samples and the dataset's own warnings (ignored folders and the like)."""
    dataset = open_dataset(config.data, config.split, config.classes, holdout=ALL_GOOD)
    both = contradictory_labels(dataset.samples)
    return dataset.samples, [*dataset.warnings, *filter(None, [both])]


def calibrate(
    config: CalibrateConfig,
    samples: Sequence[Sample] | None = None,
    advance: Callable[[int], None] | None = None,
) -> Calibration:
    """Score `samples` (default: the config's data) and store the chosen thresholds, holding
    the artifact's lock from reading the old thresholds to writing the new ones."""
    if config.rollback:
        return rollback(config)
    notes: list[str] = []
    if samples is None:
        samples, notes = open_validation(config)
    with _writing(config):
        return _calibrate(config, samples, notes, advance)


def _writing(config: CalibrateConfig) -> contextlib.AbstractContextManager:
    """The artifact's lock, from reading the old thresholds to writing the new ones (a dry
    run writes nothing and takes none)."""
    return contextlib.nullcontext() if config.dry_run else lock_artifact(config.lock_target)


def _store(config: CalibrateConfig, after: Thresholds, weights: str | None) -> list[Path]:
    """Write the line's thresholds (nothing on a dry run): beside the model file, or a served
    model's file (`config.thresholds`), naming the weights they are for."""
    if config.dry_run:
        return []
    if config.thresholds is not None:
        return [line_thresholds.write(config.thresholds, after, weights, config.force)]
    return write_thresholds(config.model, after, config.force)


def _calibrate(
    config: CalibrateConfig,
    samples: Sequence[Sample],
    notes: list[str],
    advance: Callable[[int], None] | None,
) -> Calibration:
    from ..backends import register_model_backends
    from ..runtime.detector import Detector

    register_model_backends()  # a checkpoint calibrates through PyTorch eager
    policy = config.policy()
    with Detector(
        config.model, backend=config.backend, thresholds_file=config.thresholds
    ) as detector:
        before = detector.in_force.thresholds if config.served else read_thresholds(config.model)
        weights = line_thresholds.weights_id(detector.metadata)
        known = detector.metadata.class_names
        unknown = sorted({s.class_name for s in samples} - set(known)) if known else []
        if unknown:
            notes.append(
                f"classes the model was not trained on are left out: {', '.join(unknown)} "
                f"(it knows {', '.join(known)})"
            )
            samples = [s for s in samples if s.class_name not in unknown]
        if not samples:
            raise UniadError(f"{config.data}: no validation images of the model's classes")
        scores, unfit = score_samples(detector, samples, config.batch_size, advance)
        backend = detector.backend.name
    check_finite(scores, samples)
    notes += filter(None, [unfit_note(unfit, len(samples))])
    labels = np.array([s.label for s in samples])
    names = [s.class_name for s in samples]
    provenance = {
        "source": CALIBRATION,
        "date": line_thresholds.now(),
        "data": str(config.data.resolve()),
        "split": config.split,
        "good": int((labels == 0).sum()),
        "defective": int((labels == 1).sum()),
        "images": len(samples),
        "policy": policy.describe(),
        "backend": backend,
    }
    after, rows = calibrate_scores(
        scores, labels, names, policy, before, provenance, config.confidence, known,
        config.warn_false_alarm_rate,
    )  # fmt: skip
    if not any(row.calibrated for row in rows):
        why = "; ".join(f"{r.name}: {r.warning}" for r in rows if r.warning)
        raise UniadError(
            f"nothing was calibrated on {config.data} ({why}); "
            f"{redact_url(str(config.model))} was not changed"
        )
    written = _store(config, after, weights)
    return Calibration(
        config.model, policy, rows, before, after, notes, written, config.confidence,
        config.dry_run,
    )  # fmt: skip


def _recorded_row(name: str, after: Thresholds, before: Thresholds) -> Row:
    """A rollback row: each set's rates as measured when it was calibrated (dashes only for
    sets that recorded none, such as hold-out thresholds)."""
    new = (after.provenance.get(RATES) or {}).get(name) or {}
    old = (before.provenance.get(RATES) or {}).get(name) or {}
    threshold = after.global_ if name == GLOBAL else after.for_class(name)
    previous = before.global_ if name == GLOBAL else before.for_class(name)
    return Row(
        name,
        int(new.get("good") or 0),
        int(new.get("defective") or 0),
        threshold,
        previous,
        false_alarm_rate=new.get("false_alarm_rate"),
        detection_rate=new.get("detection_rate"),
        previous_false_alarm_rate=old.get("false_alarm_rate"),
        previous_detection_rate=old.get("detection_rate"),
        warning=None if new else "no rates recorded for the restored thresholds",
    )


def _recorded(config: CalibrateConfig) -> tuple[Thresholds, str | None]:
    """The thresholds in force and the weights they are for, without opening the model: a
    served model's from its line file (which names its weights)."""
    if config.thresholds is None:
        return read_thresholds(config.model), None
    if not config.thresholds.is_file():
        raise UniadError(f"{config.thresholds} does not exist yet: there is nothing to roll back")
    return line_thresholds.read_file(config.thresholds)


def rollback(config: CalibrateConfig) -> Calibration:
    """Restore the newest thresholds in the history (unless a dry run)."""
    with _writing(config):
        before, weights = _recorded(config)
        try:
            after = before.rolled_back()
        except ValueError as exc:
            raise UniadError(f"{redact_url(str(config.model))}: {exc}") from None
        written = _store(config, after, weights)
    names = sorted(set(before.per_class) | set(after.per_class))
    rows = [_recorded_row(name, after, before) for name in [*names, GLOBAL]]
    return Calibration(
        config.model, None, rows, before, after, [], written, config.confidence, config.dry_run
    )
