"""The torch backend's fp16 is PyTorch autocast, which has no per-layer range contract (the
ONNX `--half` graph has one: `export/fp16_range.py`). Frames whose backbone overflows float16
are recomputed in float32 (`UniAD.forward`), but a model whose activations merely come close
to float16's limits loses precision on every frame. So before a `TorchBackend` runs fp16 it
measures autocast against float32 on the stress frames and refuses the model beyond the same
limits an fp16 export must meet: a wrong score is worse than a slower one.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UniadError
from ..parity import HALF_LIMITS, Parity, compare, per_frame, worst
from ..stress import stress_batch
from .uniad import FusedUniAD

CHUNK = 4
"""Stress frames per forward pass: bounds the memory of the check at the 512 preset."""


def evaluate(
    fused: FusedUniAD, frames: np.ndarray, device: torch.device, half: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(maps, scores) of `frames` in float32, or under float16 autocast when `half`."""
    maps, scores = [], []
    for start in range(0, len(frames), CHUNK):
        batch = torch.from_numpy(frames[start : start + CHUNK]).to(device)
        with (
            torch.inference_mode(),
            torch.autocast(device.type, dtype=torch.float16, enabled=half),
        ):
            anomaly_map, score = fused(batch)
        maps.append(anomaly_map.float().cpu().numpy())
        scores.append(score.float().cpu().numpy())
    return np.concatenate(maps), np.concatenate(scores)


def check_autocast_drift(fused: FusedUniAD, device: torch.device, label: str) -> Parity:
    """Autocast against float32 on every stress frame; `UniadError` beyond `HALF_LIMITS`."""
    names, frames = stress_batch(fused.model.preset.input_size)
    reference = evaluate(fused, frames, device, half=False)
    candidate = evaluate(fused, frames, device, half=True)
    drift = compare(reference, candidate)
    broken = drift.failures(HALF_LIMITS)
    if broken:
        raise UniadError(
            f"{label}: PyTorch float16 (autocast) drifts from float32 on the stress frames "
            f"({'; '.join(broken)}; worst frame: {names[worst(per_frame(reference, candidate))]}); "
            "run it with --precision fp32, or export it with --precision fp16, whose range "
            "contract keeps such layers float32"
        )
    return drift
