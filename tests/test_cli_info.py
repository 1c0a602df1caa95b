"""Issue 14 (bugs 1, 2): `info` on pretrained and official checkpoints, and their provenance."""

from __future__ import annotations

import json

import pytest
import torch
from official_reference import to_official_state
from typer.testing import CliRunner

from uniad_edge.cli.app import app
from uniad_edge.model import build_model, load_checkpoint, save_checkpoint
from uniad_edge.model.checkpoint import OFFICIAL_BACKBONE_PROVENANCE
from uniad_edge.model.deployment import build_metadata


@pytest.fixture(scope="module")
def pretrained_ckpt(tmp_path_factory, small_preset):
    """Our checkpoint of a model whose backbone says it is pretrained, as every real one does."""
    model = build_model(small_preset, pretrained=False)
    model.backbone.pretrained = True
    model.backbone.weights_sha256 = "ab" * 32
    return save_checkpoint(tmp_path_factory.mktemp("info") / "real.pth", model)


@pytest.fixture(scope="module")
def official_ckpt(tmp_path_factory, small_preset):
    model = build_model(small_preset, pretrained=False)
    path = tmp_path_factory.mktemp("official") / "ckpt.pth.tar"
    torch.save({"state_dict": to_official_state(model), "epoch": 3}, path)
    return path


def test_info_text_on_a_pretrained_checkpoint(pretrained_ckpt) -> None:
    result = CliRunner().invoke(app, ["info", str(pretrained_ckpt)])
    assert result.exit_code == 0, result.output
    assert "backbone_pretrained" in result.output and "yes" in result.output


def test_info_text_on_an_official_checkpoint_says_assumed(official_ckpt) -> None:
    result = CliRunner().invoke(app, ["info", str(official_ckpt)])
    assert result.exit_code == 0, result.output
    assert "assumed (official checkpoint)" in " ".join(result.output.split())


def test_official_backbone_provenance_is_assumed_not_asserted(official_ckpt) -> None:
    ckpt = load_checkpoint(official_ckpt)
    assert ckpt.backbone_provenance == OFFICIAL_BACKBONE_PROVENANCE
    assert "assumed" in OFFICIAL_BACKBONE_PROVENANCE
    data = json.loads(CliRunner().invoke(app, ["info", str(official_ckpt), "--json"]).output)
    assert data["backbone_provenance"] == OFFICIAL_BACKBONE_PROVENANCE
    exported = build_metadata(ckpt, "m", None, 18, "fp32")
    assert exported.backbone_provenance == OFFICIAL_BACKBONE_PROVENANCE


def test_own_checkpoint_provenance_names_the_weights(pretrained_ckpt, small_preset, tmp_path):
    assert "ab" * 32 in load_checkpoint(pretrained_ckpt).backbone_provenance
    random = save_checkpoint(tmp_path / "r.pth", build_model(small_preset, pretrained=False))
    assert load_checkpoint(random).backbone_provenance == "random-init"
