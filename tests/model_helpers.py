"""Small real models for tests that train or export: seconds, not minutes, on two CPU cores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from uniad_edge.presets import PRESETS

# mvtec-224's backbone taps and neck at 64 px (a 4x4 token grid) with a one-layer transformer.
TINY = PRESETS["mvtec-224"].replace(
    name="tiny-64",
    input_size=(64, 64),
    num_encoder_layers=1,
    num_decoder_layers=1,
    hidden_dim=32,
    nhead=4,
    dim_feedforward=64,
    neighbor_size=(3, 3),
)


def tiny_checkpoint(path: Path, thresholds: dict[str, Any] | None = None) -> Path:
    """A random-init TINY checkpoint at `path`; with `thresholds`, classes wood and pill carry
    them (as a calibrated checkpoint would). torch is imported here, not by every importer."""
    from uniad_edge.model import build_model, save_checkpoint

    meta = None
    if thresholds is not None:
        meta = {"class_names": ["wood", "pill"], "thresholds": thresholds}
    return save_checkpoint(path, build_model(TINY, pretrained=False).eval(), meta)
