"""Model size and cost, for `info`, `bench` and reports."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..presets import Preset
from .backbone import build_backbone
from .uniad import UniAD


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@functools.lru_cache(maxsize=8)
def gflops(preset: Preset) -> float:
    """GFLOPs (2 per multiply-add) of one image, counted on the meta device: no real compute.

    Convolutions and matrix products only (what dominates; norms and activations are not
    counted). Cached: every export and the PyTorch backend write it into their metadata."""
    with torch.device("meta"):
        model = UniAD(preset, build_backbone(preset)).eval()
        images = torch.empty(1, 3, *preset.input_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(images)
    return counter.get_total_flops() / 1e9


def describe(model: UniAD) -> dict[str, Any]:
    """The facts `uniad-edge info` prints, as plain JSON-able values."""
    preset = model.preset
    backbone = count_params(model.backbone)
    reconstruction = count_params(model.reconstruction)
    return {
        "preset": preset.name,
        "input_size": list(preset.input_size),
        "backbone": preset.backbone,
        "stages": list(preset.stages),
        "taps": list(preset.taps),
        "output_stride": preset.output_stride,
        "feature_map": list(preset.feature_map),
        "tokens": preset.tokens,
        "score": preset.score,
        "params": {
            "backbone": backbone,
            "reconstruction": reconstruction,
            "total": backbone + reconstruction,
        },
        "gflops": round(gflops(preset), 3),
        "backbone_pretrained": model.backbone.pretrained,
    }
