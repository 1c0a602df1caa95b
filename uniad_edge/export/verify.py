"""Parity at export time: ONNX Runtime CPU against the PyTorch model on the same frames.

A graph that loads but computes something else is the worst export failure, because the camera
runtime would silently report wrong scores; so every export is checked on real-looking frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..errors import UniadError
from ..metadata import INPUT_NAME
from ..parity import EXPORT_LIMITS, HALF_LIMITS, Parity, compare
from ..presets import Preset


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
    """ORT vs PyTorch at each batch size; `UniadError` beyond `EXPORT_LIMITS`."""
    session = ort_session(model_bytes)
    results = []
    for batch in batches:
        chunk = frames[:batch]
        parity = compare(run_torch(fused, chunk), run_ort(session, chunk))
        results.append(parity)
        broken = parity.failures(EXPORT_LIMITS)
        if broken:
            raise UniadError(
                f"ONNX Runtime disagrees with PyTorch at batch {batch}: {'; '.join(broken)}; "
                "nothing was written"
            )
    return results


class FrameBatch(Protocol):
    """Frames a check reads one slice at a time: an array, or `frame_size.CameraFrames`, which
    makes whole camera frames only for the slice asked for."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice, /) -> np.ndarray: ...


def chunks(frames: FrameBatch, batch: int | None, largest: int = 1) -> Iterator[np.ndarray]:
    """`frames` in chunks a graph of static `batch` (or a dynamic one, `largest` at a time)
    accepts, made as they are taken. One frame at a time by default: a session's memory grows
    with its batch (the mixed-precision drift check of mvtec-512 reached 3.9 GB resident in
    chunks of 4)."""
    size = batch or largest
    for start in range(0, len(frames), size):
        chunk = frames[start : start + size]
        if batch and len(chunk) < batch:
            pad = np.resize(np.arange(len(chunk)), batch - len(chunk))
            chunk = np.concatenate([chunk, chunk[pad]])
        yield np.ascontiguousarray(chunk)


def run_ort_chunked(
    session: object, frames: FrameBatch, batch: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """`run_ort` over `frames` in chunks a static-`batch` graph accepts (padding dropped)."""
    maps, scores = [], []
    for chunk in chunks(frames, batch):
        anomaly_map, score = run_ort(session, chunk)
        maps.append(anomaly_map)
        scores.append(score)
    count = len(frames)
    return np.concatenate(maps)[:count], np.concatenate(scores)[:count]


def check_half_drift(
    fp32_bytes: bytes,
    half_bytes: bytes,
    frames: np.ndarray,
    *,
    batch: int | None = None,
    stress: dict[str, FrameBatch] | None = None,
    culprit: str = "",
) -> Parity:
    """Mixed-precision graph vs the float32 graph, both in ORT CPU, on `frames` and then on
    each `stress` frame alone (a batch of one); `UniadError` beyond `HALF_LIMITS` naming the
    frame and `culprit` (the node nearest float16's limit). Returns the drift on `frames`."""
    reference, candidate = ort_session(fp32_bytes), ort_session(half_bytes)
    drift = compare(
        run_ort_chunked(reference, frames, batch), run_ort_chunked(candidate, frames, batch)
    )
    _refuse_drift(drift, "its verification frames", culprit)
    for name, frame in (stress or {}).items():  # each a batch of one: no stack of 4K frames
        one = compare(
            run_ort_chunked(reference, frame, batch), run_ort_chunked(candidate, frame, batch)
        )
        _refuse_drift(one, f"stress frame {name!r}", culprit)
    return drift


def _refuse_drift(drift: Parity, where: str, culprit: str) -> None:
    broken = drift.failures(HALF_LIMITS)
    if broken:
        why = f"; {culprit}" if culprit else ""
        raise UniadError(
            f"--half graph drifts from float32 on {where}: {'; '.join(broken)}{why}; "
            "export without --half"
        )
