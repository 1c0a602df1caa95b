"""Issue 4: an official-layout ckpt.pth.tar exports and matches; bad inputs leave nothing.

One real export (the official checkpoint); the bad-input cases fail before any tracing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from official_reference import to_official_state

from uniad_edge.errors import UniadError
from uniad_edge.export import export_onnx, sample_frames
from uniad_edge.export.verify import run_torch
from uniad_edge.model import FusedUniAD, build_model, load_checkpoint, save_checkpoint
from uniad_edge.parity import EXPORT_LIMITS, compare
from uniad_edge.presets import PRESETS

PRESET = PRESETS["mvtec-224"].replace(name="test-224", num_encoder_layers=1, num_decoder_layers=1)


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("official") / "ckpt.pth.tar"
    model = build_model(PRESET, pretrained=False)
    torch.save({"epoch": 7, "state_dict": to_official_state(model)}, path)
    return path


def test_official_checkpoint_exports_and_matches_pytorch_from_same_file(official, tmp_path):
    result = export_onnx(official, tmp_path, verify_batches=(1, 2))
    assert result.onnx_path == tmp_path / "ckpt.onnx"
    assert result.metadata.backbone_pretrained is True  # official files use the ImageNet backbone
    assert result.metadata.preset_config["num_encoder_layers"] == 1
    fused = FusedUniAD(load_checkpoint(official).model).eval()
    frames = sample_frames(PRESET, 2)
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    parity = compare(run_torch(fused, frames), tuple(session.run(None, {"image": frames})))
    assert parity.failures(EXPORT_LIMITS) == [], parity.describe()
    assert np.isfinite(parity.map_abs)


def test_missing_checkpoint_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(UniadError, match="no such checkpoint") as info:
        export_onnx(tmp_path / "nope.pth", tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_corrupt_checkpoint_is_a_one_line_error(tmp_path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UniadError, match="bad.pth") as info:
        export_onnx(bad, tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_unwritable_output_folder_fails_before_tracing(tmp_path) -> None:
    ckpt = save_checkpoint(tmp_path / "m.pth", build_model(PRESET, pretrained=False))
    blocker = tmp_path / "file"
    blocker.write_text("a regular file where a folder should be")  # root ignores permissions
    with pytest.raises(UniadError, match="cannot write to") as info:
        export_onnx(ckpt, blocker / "export")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"opset": 16}, "--opset 16"), ({"batch": 0}, "--batch 0"), ({"preset": "nope"}, "nope")],
)
def test_bad_options_are_one_line_errors(official, tmp_path, kwargs, message) -> None:
    with pytest.raises(UniadError, match=message):
        export_onnx(official, tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []
