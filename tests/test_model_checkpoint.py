"""Issue 2: checkpoints (ours and the official layout), safe loading, one-line errors."""

from __future__ import annotations

import pathlib

import cv2
import numpy as np
import pytest
import torch
from efficientnet_pytorch import EfficientNet
from official_reference import official_reconstruct, to_official_state

from uniad_edge.errors import UniadError
from uniad_edge.model import build_model, load_checkpoint, save_checkpoint
from uniad_edge.model.preprocess import Preprocess
from uniad_edge.presets import IMAGENET_MEAN, IMAGENET_STD, PRESETS


@pytest.fixture(scope="module")
def model_224():
    torch.manual_seed(1)
    return build_model(PRESETS["mvtec-224"], pretrained=False).eval()


def test_official_reference_matches_our_reconstruction(model_224) -> None:
    feats = torch.randn(2, 272, 14, 14) * 3
    with torch.no_grad():
        ours = model_224.reconstruction(feats)
    theirs = official_reconstruct(to_official_state(model_224), feats)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_official_checkpoint_loads_with_inferred_preset(model_224, tmp_path) -> None:
    path = tmp_path / "ckpt.pth.tar"
    torch.save(
        {
            "state_dict": to_official_state(model_224),
            "epoch": 7,
            "best_metric": 0.9,
            "optimizer": {"state": {}, "param_groups": []},
        },
        path,
    )
    ckpt = load_checkpoint(path)
    assert ckpt.kind == "official" and ckpt.preset.name == "mvtec-224"
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected, loaded = model_224(images), ckpt.model(images)
    torch.testing.assert_close(loaded[0], expected[0])
    torch.testing.assert_close(loaded[1], expected[1])


def test_official_checkpoint_with_missing_key_names_it(model_224, tmp_path) -> None:
    state = to_official_state(model_224)
    del state["module.reconstruction.transformer.decoder.norm.weight"]
    path = tmp_path / "ckpt.pth.tar"
    torch.save({"state_dict": state}, path)
    with pytest.raises(UniadError, match="decoder.norm.weight") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_mismatched_shape_is_one_line_error(model_224, tmp_path) -> None:
    state = to_official_state(model_224)
    state["module.reconstruction.transformer.encoder.layers.0.linear1.bias"] = torch.zeros(3)
    path = tmp_path / "bad.pth.tar"
    torch.save({"state_dict": state}, path)
    with pytest.raises(UniadError, match="linear1.bias"):
        load_checkpoint(path)


def test_own_checkpoint_round_trip_keeps_meta(small_preset, tmp_path) -> None:
    model = build_model(small_preset, pretrained=False).eval()
    meta = {"class_names": ["a", "b"], "thresholds": {"global": 1.5, "per_class": {"a": 1.0}}}
    path = save_checkpoint(tmp_path / "m.pth", model, meta, training={"epoch": 3})
    ckpt = load_checkpoint(path)
    assert ckpt.kind == "uniad-edge" and ckpt.preset == small_preset
    assert ckpt.class_names == ["a", "b"] and ckpt.thresholds["global"] == 1.5
    assert ckpt.training == {"epoch": 3} and ckpt.model.backbone.pretrained is False
    images = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model(images)[1], model(images)[1])


class _Payload:
    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_pickled_object_is_refused_without_running(tmp_path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, path)
    with pytest.raises(UniadError, match="refused") as info:
        load_checkpoint(path)
    assert not marker.exists()
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated_file_is_one_line_error(small_preset, tmp_path) -> None:
    good = save_checkpoint(tmp_path / "m.pth", build_model(small_preset, pretrained=False))
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UniadError, match="truncated or corrupt") as info:
        load_checkpoint(cut)
    assert "\n" not in str(info.value) and "cut.pth" in str(info.value)


def test_missing_file_is_one_line_error(tmp_path) -> None:
    with pytest.raises(UniadError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.pth")


def test_interrupted_save_leaves_nothing(small_preset, tmp_path, monkeypatch) -> None:
    model = build_model(small_preset, pretrained=False)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "m.pth", model)
    assert list(tmp_path.iterdir()) == []


def test_imagenet_weights_load_from_explicit_path(tmp_path) -> None:
    full = EfficientNet.from_name("efficientnet-b4")
    path = tmp_path / PRESETS["mvtec-224"].backbone_spec.weights_file
    torch.save(full.state_dict(), path)
    model = build_model(PRESETS["mvtec-224"], backbone_weights=path)
    assert model.backbone.pretrained and model.backbone.weights_sha256
    torch.testing.assert_close(model.backbone._blocks[21]._bn2.weight, full._blocks[21]._bn2.weight)


def test_offline_download_names_the_flag(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(UniadError, match="--backbone-weights") as info:
        build_model(PRESETS["mvtec-224"])
    assert "\n" not in str(info.value)


def test_weights_that_are_not_b4_are_refused(tmp_path) -> None:
    path = tmp_path / "b0.pth"
    torch.save(EfficientNet.from_name("efficientnet-b0").state_dict(), path)
    with pytest.raises(UniadError, match="b0.pth"):
        build_model(PRESETS["mvtec-224"], backbone_weights=path)


def test_preprocess_matches_opencv_pipeline() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    ours = Preprocess(IMAGENET_MEAN, IMAGENET_STD)(torch.from_numpy(frames))
    rgb = np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]).astype(np.float32) / 255
    expected = (rgb - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(ours.numpy(), expected.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-5)


def _official_file(model, tmp_path, drop=()) -> pathlib.Path:
    """An official-layout file of `model` without every key that starts with one of `drop`."""
    state = to_official_state(model)
    prefixes = tuple(f"module.reconstruction.transformer.{p}." for p in drop)
    state = {k: v for k, v in state.items() if not (prefixes and k.startswith(prefixes))}
    path = tmp_path / "ckpt.pth.tar"
    torch.save({"state_dict": state, "epoch": 7}, path)
    return path


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        (
            ["decoder.layers.3"],
            "4 encoder and 3 decoder layers, official UniAD has 4 + 4: decoder layer 3 is missing",
        ),
        (["encoder.layers.2", "encoder.layers.3"], "encoder layers 2-3 are missing"),
        (["decoder.layers.1"], "lacks decoder layer 1"),
        (["encoder.layers.0"], "lacks encoder layer 0"),
        (["decoder.layers"], "has no decoder layers"),
        (["decoder.norm"], "missing key reconstruction.transformer.decoder.norm.weight"),
    ],
)
def test_official_checkpoint_that_lost_layers_is_refused(model_224, tmp_path, drop, message):
    """Issue 28 item 10: a file missing its last decoder layer loaded as a 3-layer model."""
    path = _official_file(model_224, tmp_path, drop)
    with pytest.raises(UniadError) as info:
        load_checkpoint(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}: ") and message in text, text


def test_official_checkpoint_of_another_equal_depth_loads_with_a_warning(
    small_preset, tmp_path, caplog
) -> None:
    model = build_model(small_preset, pretrained=False).eval()
    with caplog.at_level("WARNING", logger="uniad_edge.model.checkpoint"):
        ckpt = load_checkpoint(_official_file(model, tmp_path))
    assert ckpt.preset.num_encoder_layers == ckpt.preset.num_decoder_layers == 2
    (warning,) = caplog.messages
    assert "2 encoder and 2 decoder layers, official UniAD has 4 + 4" in warning
    caplog.clear()
    complete = build_model(PRESETS["mvtec-224"], pretrained=False).eval()
    with caplog.at_level("WARNING", logger="uniad_edge.model.checkpoint"):
        assert load_checkpoint(_official_file(complete, tmp_path)).preset.name == "mvtec-224"
    assert caplog.messages == []
