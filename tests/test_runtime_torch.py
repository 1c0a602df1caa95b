"""The PyTorch backend: a checkpoint runs through the same loader and Detector as an ONNX, once
the layer above the runtime has added its row (`uniad_edge.backends`)."""

from __future__ import annotations

import numpy as np
import torch

from uniad_edge.backends import register_model_backends
from uniad_edge.model import FusedUniAD, build_model, save_checkpoint
from uniad_edge.model.torch_backend import TorchBackend
from uniad_edge.runtime.detector import Detector
from uniad_edge.runtime.loader import load_backend


def test_checkpoint_runs_through_loader_and_detector(small_preset, tmp_path) -> None:
    model = build_model(small_preset, pretrained=False).eval()
    meta = {"class_names": ["pill"], "thresholds": {"global": 10.0, "per_class": {"pill": 1.0}}}
    path = save_checkpoint(tmp_path / "m.pth", model, meta)
    register_model_backends()
    backend = load_backend(path)
    assert isinstance(backend, TorchBackend)
    assert backend.metadata.class_names == ["pill"]
    assert backend.metadata.checkpoint_sha256 and not backend.metadata.backbone_pretrained

    frame = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    with torch.inference_mode():
        expected = FusedUniAD(model)(torch.from_numpy(frame[None]))[1].item()
    detection = Detector(backend)(frame)
    assert abs(detection.score - expected) <= 1e-5 * abs(expected)
    assert detection.threshold == 10.0 and detection.is_anomalous == (expected >= 10.0)
    assert Detector(backend, class_name="pill")(frame).threshold == 1.0


def test_preset_gives_random_init_reference(small_preset) -> None:
    backend = TorchBackend(small_preset)
    maps, scores = backend.infer(np.zeros((2, 224, 224, 3), dtype=np.uint8))
    assert maps.shape == (2, 224, 224) and scores.shape == (2,)
    assert maps.dtype == np.float32 and np.isfinite(maps).all()
    assert backend.metadata.backbone_pretrained is False
