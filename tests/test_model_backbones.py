"""The backbone seam: stages, taps, channels and weights come from one table, old preset files and
checkpoints (no `backbone` field) still load, and a new backbone is one data row plus its
constructor in the model layer (proved with a tiny two-stage CNN defined here)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from torch import nn

from uniad_edge import backbones
from uniad_edge.backbones import BackboneSpec, Stage
from uniad_edge.model import build_model, load_checkpoint, save_checkpoint
from uniad_edge.model.backbone import CONSTRUCTORS, Backbone, build_backbone
from uniad_edge.model.efficientnet import EfficientNetBackbone
from uniad_edge.presets import PRESETS, Preset
from uniad_edge.train.cache import cache_key
from uniad_edge.train.config import load_preset


class TinyBackbone(Backbone):
    """Two strided conv stages: block 0 (8 channels, stride 2), block 1 (16, stride 4)."""

    def __init__(self, spec: BackboneSpec, taps: tuple[int, ...]) -> None:
        super().__init__(spec, taps)
        self.blocks = nn.ModuleList(
            [nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Conv2d(8, 16, 3, stride=2, padding=1)]
        )
        self.freeze()

    def forward(self, x):
        features = []
        for idx, block in enumerate(self.blocks):
            x = torch.relu(block(x))
            if idx in self.taps:
                features.append(x)
        return features


TINY = BackboneSpec(
    name="tiny",
    arch="tiny",
    stages={1: Stage(0, 8, 2), 2: Stage(1, 16, 4)},
    weights_file="tiny-weights.pth",
    weights_url="https://127.0.0.1:9/tiny-weights.pth",
)


@pytest.fixture
def tiny(monkeypatch) -> Preset:
    monkeypatch.setitem(backbones.BACKBONES, "tiny", TINY)
    monkeypatch.setitem(CONSTRUCTORS, "tiny", TinyBackbone)
    return Preset(
        "tiny-64",
        (64, 64),
        (1, 2),
        4,
        backbone="tiny",
        hidden_dim=32,
        nhead=4,
        num_encoder_layers=1,
        num_decoder_layers=1,
        dim_feedforward=64,
    )


def test_every_backbone_row_has_its_constructor_in_the_model_layer() -> None:
    assert set(CONSTRUCTORS) == set(backbones.BACKBONES)
    with torch.device("meta"):
        lite = CONSTRUCTORS["efficientnet-lite0"](backbones.BACKBONES["efficientnet-lite0"], (0,))
    assert type(lite).__name__ == "EfficientNetLiteBackbone" and lite.taps == (0,)


def test_presets_take_taps_and_channels_from_the_table() -> None:
    # The paper's numbers (README presets table), restated rather than read from the table.
    assert PRESETS["mvtec-512"].taps == (1, 5, 9, 21, 31)
    assert PRESETS["mvtec-512"].channels == 720
    assert PRESETS["mvtec-224"].taps == (1, 5, 9, 21) and PRESETS["mvtec-224"].channels == 272
    paper = [p for name, p in PRESETS.items() if not name.startswith("lite0-")]
    assert all(p.backbone == "efficientnet-b4" for p in paper)
    b4 = backbones.get_backbone("efficientnet-b4")
    assert [s.stride for s in b4.stages.values()] == [2, 4, 8, 16, 32]


def test_old_preset_files_without_a_backbone_still_load(tmp_path) -> None:
    data = PRESETS["mvtec-224"].to_dict()
    assert data.pop("backbone") == "efficientnet-b4"
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(data))
    assert load_preset(str(path)) == PRESETS["mvtec-224"]


def test_unknown_backbone_and_stage_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="unknown backbone 'resnet9'; choose one of: effic"):
        PRESETS["mvtec-224"].replace(backbone="resnet9")
    with pytest.raises(ValueError, match="stages must be increasing values of 1..5"):
        PRESETS["mvtec-224"].replace(stages=(1, 6))


def test_build_backbone_follows_the_preset(small_preset) -> None:
    with torch.device("meta"):
        backbone = build_backbone(small_preset)
    assert isinstance(backbone, EfficientNetBackbone)
    assert backbone.taps == (1, 5, 9, 21) and len(backbone._blocks) == 22
    assert not backbone.pretrained and not backbone.training
    with pytest.raises(ValueError, match="init must be one of"):
        build_backbone(small_preset, init="pretrained")


def test_a_new_backbone_is_one_table_entry(tiny, tmp_path) -> None:
    assert tiny.taps == (0, 1) and tiny.channels == 24 and tiny.feature_map == (16, 16, 24)
    torch.manual_seed(0)
    model = build_model(tiny, pretrained=False).eval()
    assert isinstance(model.backbone, TinyBackbone)
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        maps, scores = model(images)
    assert maps.shape == (2, 64, 64) and scores.shape == (2,)
    path = save_checkpoint(tmp_path / "tiny.pth", model)
    loaded = load_checkpoint(path)
    assert loaded.preset.backbone == "tiny" and isinstance(loaded.model.backbone, TinyBackbone)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(images), (maps, scores))


def test_a_new_backbone_loads_its_own_imagenet_file(tiny, tmp_path) -> None:
    reference = TinyBackbone(TINY, tiny.taps)
    reference.init_random()
    weights = tmp_path / TINY.weights_file
    torch.save(reference.state_dict(), weights)
    model = build_model(tiny, backbone_weights=weights)
    assert model.backbone.pretrained and model.backbone.weights_sha256
    torch.testing.assert_close(model.backbone.blocks[1].weight, reference.blocks[1].weight)


def test_the_feature_cache_key_follows_the_backbone(tiny, monkeypatch) -> None:
    monkeypatch.setitem(backbones.BACKBONES, "tiny2", replace(TINY, name="tiny2"))
    other = tiny.replace(backbone="tiny2")
    assert cache_key([], tiny, "random:0") != cache_key([], other, "random:0")
