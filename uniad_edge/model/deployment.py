"""The `ModelMetadata` an exported graph carries: everything the runtime must not guess."""

from __future__ import annotations

import importlib.metadata
import json

from .. import __version__
from ..metadata import INPUT_NAME, ModelMetadata, Thresholds
from ..model import Checkpoint

VERSIONED = ("torch", "onnx", "onnxscript", "onnxruntime")


def versions() -> dict[str, str]:
    found = {"uniad-edge": __version__}
    for package in VERSIONED:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def preprocessing(ckpt: Checkpoint) -> dict[str, object]:
    """What the caller does (resize) and what the graph does (everything else)."""
    h, w = ckpt.preset.input_size
    return {
        "input": f"{INPUT_NAME}: uint8 [B, {h}, {w}, 3] BGR (OpenCV order)",
        "caller": f"resize each frame to {w}x{h} (cv2.resize, INTER_LINEAR)",
        "in_graph": "cast to float32, BGR->RGB, /255, ImageNet mean/std, NHWC->NCHW",
        "mean_rgb": list(ckpt.preset.mean),
        "std_rgb": list(ckpt.preset.std),
    }


def build_metadata(
    ckpt: Checkpoint, name: str, batch: int | None, opset: int, precision: str
) -> ModelMetadata:
    preset = ckpt.preset
    return ModelMetadata(
        name=name,
        preset=preset.name,
        input_size=preset.input_size,
        score_reduction=preset.score,
        score_pool=preset.score_pool,
        output_stride=preset.output_stride,
        feature_map=preset.feature_map,
        class_names=ckpt.class_names,
        thresholds=Thresholds.from_dict(ckpt.thresholds),
        backbone_pretrained=ckpt.model.backbone_info.pretrained,
        checkpoint_sha256=ckpt.sha256,
        precision=precision,
        batch=batch,
        opset=opset,
        versions=versions(),
        preprocessing=preprocessing(ckpt),
        preset_config=json.loads(json.dumps(preset.to_dict())),  # tuples -> lists, as read
    )
