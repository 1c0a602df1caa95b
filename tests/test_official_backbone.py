"""Issue 14 audit: the backbone (380 px static "same" padding) and the neck match a re-statement
of the official code's maths (tests/official_reference.py), as the transformer already does.

Random weights with BatchNorm statistics moved off identity, so every op counts; mvtec-224's taps
(blocks 1, 5, 9, 21 at strides 2, 4, 8, 16, the official config) at 224 px, where the static
padding for B4's declared 380 px differs from "same" padding for the real input.
"""

from __future__ import annotations

import pytest
import torch
from official_reference import official_backbone, official_neck, to_official_state

from uniad_edge.model import build_model
from uniad_edge.presets import PRESETS

PRESET = PRESETS["mvtec-224"].replace(
    name="official-224", num_encoder_layers=1, num_decoder_layers=1
)
TAPS = (1, 5, 9, 21)
STRIDES = [2, 4, 8, 16]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(5)
    model = build_model(PRESET, pretrained=False).eval()
    with torch.no_grad():
        for module in model.backbone.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.8, 1.2)
                module.bias.uniform_(-0.1, 0.1)
    return model


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    torch.manual_seed(6)
    return torch.randn(1, 3, 224, 224)


@pytest.fixture(scope="module")
def ours(model, images) -> list[torch.Tensor]:
    with torch.no_grad():
        return model.backbone(images)


@pytest.fixture(scope="module")
def theirs(model, images) -> list[torch.Tensor]:
    return official_backbone(to_official_state(model), images, TAPS)


def _close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    scale = float(theirs.abs().max())
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4 * scale)


def test_backbone_taps_match_the_official_static_padding_maths(model, ours, theirs) -> None:
    assert model.backbone.taps == TAPS
    assert [f.shape[-1] for f in theirs] == [112, 56, 28, 14]
    for mine, official in zip(ours, theirs, strict=True):
        assert float(official.abs().max()) > 1e-3  # signal reaches the deepest tap
        _close(mine, official)


def test_padding_for_the_real_input_size_would_differ(model, images, ours) -> None:
    """The comparison above can fail: "same" padding computed for 224 px instead of 380 px
    already changes block 9 (stage 3 starts with a stride-2 5x5 convolution)."""
    dynamic = official_backbone(to_official_state(model), images, (9,), declared=224)[0]
    assert float((ours[2] - dynamic).abs().max()) > 1e-2 * float(ours[2].abs().max())


def test_neck_matches_the_official_resize_and_concat(model, images, theirs) -> None:
    with torch.no_grad():
        features = model.features(images)
    official = official_neck(theirs, STRIDES)
    assert official.shape == (1, PRESET.channels, 14, 14)
    _close(features, official)
