"""Parity at export time: ONNX Runtime CPU against the PyTorch model on the same frames.

A graph that loads but computes something else is the worst export failure, because the camera
runtime would silently report wrong scores; so every export is checked on real-looking frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import UniadError
from ..metadata import INPUT_NAME
from ..presets import Preset

MAP_TOLERANCE = 1e-4  # max |map diff| relative to max |map|
SCORE_TOLERANCE = 1e-5  # max |score diff| relative to max |score|
HALF_MAP_TOLERANCE = 1e-2


@dataclass(frozen=True)
class Parity:
    """Largest differences between two evaluations of the same frames at one batch size."""

    batch: int
    map_abs: float
    map_rel: float
    score_abs: float
    score_rel: float
    finite: bool = True

    def within(self, map_tol: float, score_tol: float | None) -> bool:
        score_ok = score_tol is None or self.score_rel <= score_tol
        return self.finite and self.map_rel <= map_tol and score_ok

    def describe(self) -> str:
        return (
            f"batch {self.batch}: map max abs {self.map_abs:.2e} (rel {self.map_rel:.2e}), "
            f"score max abs {self.score_abs:.2e} (rel {self.score_rel:.2e})"
        )


def sample_frames(preset: Preset, count: int, data: str | Path | None = None) -> np.ndarray:
    """`count` uint8 BGR frames at the input size: from `data` if given, else synthetic."""
    h, w = preset.input_size
    frames = _dataset_frames(data, count) if data is not None else _synthetic_frames(count, h, w)
    resized = [cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in frames]
    return np.ascontiguousarray(np.stack(resized))


def _dataset_frames(data: str | Path, count: int) -> list[np.ndarray]:
    from ..data import load_image, open_dataset

    samples = open_dataset(data, "test").samples or open_dataset(data, "train").samples
    if not samples:
        raise UniadError(f"{data}: no images to verify the export on; pass another --data")
    # Spread over the set so that several classes (and anomalies) are covered.
    picks = np.linspace(0, len(samples) - 1, count).round().astype(int)
    return [load_image(samples[i]) for i in picks]


def _synthetic_frames(count: int, h: int, w: int) -> list[np.ndarray]:
    from ..data.synth import CLASSES, render

    size = max(h, w)
    frames = []
    for i in range(count):
        spec = CLASSES[i % len(CLASSES)]
        frames.append(render(spec.name, size, (7, i), spec.defects[0] if i % 2 else None)[0])
    return frames


def compare(
    reference: tuple[np.ndarray, np.ndarray], candidate: tuple[np.ndarray, np.ndarray]
) -> Parity:
    """Differences of (map, score) pairs, relative to the reference's largest magnitude."""
    (map_ref, score_ref), (map_new, score_new) = reference, candidate
    finite = bool(np.isfinite(map_new).all() and np.isfinite(score_new).all())
    map_abs = float(np.abs(map_new.astype(np.float64) - map_ref).max())
    score_abs = float(np.abs(score_new.astype(np.float64) - score_ref).max())
    return Parity(
        batch=int(map_ref.shape[0]),
        map_abs=map_abs,
        map_rel=map_abs / max(float(np.abs(map_ref).max()), 1e-12),
        score_abs=score_abs,
        score_rel=score_abs / max(float(np.abs(score_ref).max()), 1e-12),
        finite=finite,
    )


def ort_session(model_bytes: bytes) -> object:
    """A CPU session, all graph optimisations on (what the runtime uses)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def run_ort(session: object, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    anomaly_map, score = session.run(None, {INPUT_NAME: frames})  # type: ignore[attr-defined]
    return anomaly_map, score


def run_torch(fused: object, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import torch

    with torch.inference_mode():
        anomaly_map, score = fused(torch.from_numpy(frames))  # type: ignore[operator]
    return anomaly_map.numpy(), score.numpy()


def check_parity(
    fused: object, model_bytes: bytes, frames: np.ndarray, batches: tuple[int, ...]
) -> list[Parity]:
    """ORT vs PyTorch at each batch size; `UniadError` beyond tolerance."""
    session = ort_session(model_bytes)
    results = []
    for batch in batches:
        chunk = frames[:batch]
        parity = compare(run_torch(fused, chunk), run_ort(session, chunk))
        results.append(parity)
        if not parity.within(MAP_TOLERANCE, SCORE_TOLERANCE):
            raise UniadError(
                f"ONNX Runtime disagrees with PyTorch at {parity.describe()}; tolerance map "
                f"{MAP_TOLERANCE:g}, score {SCORE_TOLERANCE:g} relative; nothing was written"
            )
    return results


def check_half_drift(fp32_bytes: bytes, half_bytes: bytes, frames: np.ndarray) -> Parity:
    """Mixed-precision graph vs the float32 graph, both in ORT CPU; `UniadError` beyond 1e-2."""
    reference = run_ort(ort_session(fp32_bytes), frames)
    drift = compare(reference, run_ort(ort_session(half_bytes), frames))
    if not drift.within(HALF_MAP_TOLERANCE, None):
        raise UniadError(
            f"--half graph drifts from float32: {drift.describe()}, finite={drift.finite}; "
            f"tolerance map {HALF_MAP_TOLERANCE:g} relative; export without --half"
        )
    return drift
