"""Issue 14 (bugs 1, 2): `info` on pretrained and official checkpoints, and their provenance."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from uniad_edge.cli.app import app
from uniad_edge.model import build_model, save_checkpoint


@pytest.fixture(scope="module")
def pretrained_ckpt(tmp_path_factory, small_preset):
    """Our checkpoint of a model whose backbone says it is pretrained, as every real one does."""
    model = build_model(small_preset, pretrained=False)
    model.backbone.pretrained = True
    model.backbone.weights_sha256 = "ab" * 32
    return save_checkpoint(tmp_path_factory.mktemp("info") / "real.pth", model)


def test_info_text_on_a_pretrained_checkpoint(pretrained_ckpt) -> None:
    result = CliRunner().invoke(app, ["info", str(pretrained_ckpt)])
    assert result.exit_code == 0, result.output
    assert "backbone_pretrained" in result.output and "yes" in result.output
