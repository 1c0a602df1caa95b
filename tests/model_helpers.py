"""Small real models for tests that train or export: seconds, not minutes, on two CPU cores."""

from __future__ import annotations

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
