"""The images an INT8 export calibrates on and is gated on, from one folder of the line's images.

Good images alternate between calibration and the gate, so the gate never judges the quantizer
on the images whose ranges it saw; defective images (when the folder has them) only feed the
gate, where they give the AUROC change. Counts are capped: calibration ranges settle within a
few dozen frames, and the gate's cost is two ONNX Runtime passes per image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import UniadError
from ..metadata import Thresholds
from .verify import FrameBatch


@dataclass
class Int8Images:
    """uint8 BGR frames at the graph's input (with --frame-size: whole camera frames, made a
    slice at a time); `gate_*` are the held-out images' labels (1: defective), classes and
    paths (for the refusal's worst image)."""

    calibration: FrameBatch
    gate: FrameBatch
    gate_labels: np.ndarray
    gate_classes: list[str]
    gate_paths: list[str]
    calibration_paths: list[str]
    source: str = ""  # the folder they came from, recorded in the sidecar


def default_calib_data(thresholds: Thresholds) -> Path:
    """The folder the model's thresholds were calibrated on, when it still exists; otherwise
    a one-line error saying what to pass."""
    data = thresholds.provenance.get("data") if thresholds.source == "calibration" else None
    if data and Path(data).is_dir():
        return Path(data)
    raise UniadError(
        "--precision int8 needs --calib-data DIR: a folder of the line's good images (MVTec "
        "layout or good/ and bad/); the model's thresholds name no calibration folder"
        + (f" ({data} is gone)" if data else "")
    )


def _samples(folder: Path) -> list:
    from ..data import open_dataset

    found: dict[str, object] = {}
    errors = []
    for split in ("train", "test"):
        try:
            for sample in open_dataset(folder, split).samples:
                found.setdefault(str(sample.path), sample)
        except (UniadError, ValueError, OSError) as exc:
            errors.append(str(exc))
    if not found:
        why = f" ({errors[0]})" if errors else ""
        raise UniadError(f"--calib-data {folder}: no images{why}; pass a folder of good images")
    return [found[key] for key in sorted(found)]


def _spread(items: list, count: int) -> list:
    if len(items) <= count:
        return items
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in picks]


def _frames(samples: list, size: tuple[int, int]) -> np.ndarray:
    from ..data import load_image

    h, w = size
    frames = [cv2.resize(load_image(s), (w, h), interpolation=cv2.INTER_LINEAR) for s in samples]
    return np.ascontiguousarray(np.stack(frames)) if frames else np.zeros((0, h, w, 3), np.uint8)


def int8_images(folder: Path, size: tuple[int, int], calibration: int, gate: int) -> Int8Images:
    """Up to `calibration` good frames to calibrate on and up to `gate` good (plus as many
    defective) held-out frames, resized to `size` (height, width)."""
    samples = _samples(Path(folder))
    good = [s for s in samples if s.label == 0]
    bad = [s for s in samples if s.label != 0]
    if len(good) < 4:
        raise UniadError(
            f"--calib-data {folder}: {len(good)} good images; INT8 needs at least 4 (half "
            "calibrate, half gate), a few dozen for a meaningful gate"
        )
    held = _spread(good[1::2], gate) + _spread(bad, gate)
    calibrating = _spread(good[0::2], calibration)
    return Int8Images(
        calibration=_frames(calibrating, size),
        calibration_paths=[str(s.path) for s in calibrating],
        gate=_frames(held, size),
        gate_labels=np.array([int(s.label != 0) for s in held]),
        gate_classes=[s.class_name for s in held],
        gate_paths=[str(s.path) for s in held],
        source=str(folder),
    )
