"""Models whose unscaled attention logits exceed float16's range, for the float16 tests.

Small and random (one encoder and one decoder layer), built the two ways issue 17 measured:
mvtec-224 with its input projection scaled x60, and mvtec-512 with the backbone re-initialised
Kaiming-normal (fan-in) after `torch.manual_seed(0)`, plus the same x60 projection.
"""

from __future__ import annotations

from pathlib import Path

from uniad_edge.presets import PRESETS

SCALE = 60.0


def overflow_checkpoint(path: Path, preset_name: str) -> Path:
    """Save the overflowing model of `preset_name` ('mvtec-224' or 'mvtec-512') at `path`."""
    import torch

    from uniad_edge.model import build_model, save_checkpoint

    torch.manual_seed(0)
    preset = PRESETS[preset_name].replace(
        name=f"x60-{preset_name}", num_encoder_layers=1, num_decoder_layers=1
    )
    model = build_model(preset, pretrained=False).eval()
    if preset_name == "mvtec-512":
        model.backbone.init_random()
    with torch.no_grad():
        model.reconstruction.input_proj.weight.mul_(SCALE)
        model.reconstruction.input_proj.bias.mul_(SCALE)
    return save_checkpoint(path, model, {"class_names": ["wood"]})
