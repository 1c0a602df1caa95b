"""The `ModelMetadata` a deployed model carries (exported graph, engine, or checkpoint run by
the PyTorch backend): everything the runtime must not guess."""

from __future__ import annotations

import json

from ..errors import UniadError
from ..line_thresholds import read_file, thresholds_path
from ..metadata import INPUT_NAME, ModelMetadata, Thresholds
from ..presets import Preset
from ..versions import package_versions
from .checkpoint import Checkpoint
from .summary import gflops


def preprocessing(
    preset: Preset,
    frame_size: tuple[int, int] | None = None,
    roi: tuple[int, int, int, int] | None = None,
) -> dict[str, object]:
    """What the caller does (resize) and what the graph does (everything else)."""
    h, w = preset.input_size
    tail = "BGR->RGB, /255, ImageNet mean/std, NHWC->NCHW"
    steps = f"cast to float32, {tail}"
    caller = f"resize each frame to {w}x{h} (cv2.resize, INTER_LINEAR)"
    if frame_size is not None:
        crop = "" if roi is None else f"crop x,y,w,h {list(roi)}, "
        steps = f"cast to float32, {crop}bilinear resize to {w}x{h}, {tail}"
        h, w = frame_size
        caller = f"pass whole {w}x{h} camera frames"
    return {
        "input": f"{INPUT_NAME}: uint8 [B, {h}, {w}, 3] BGR (OpenCV order)",
        "caller": caller,
        "in_graph": steps,
        "mean_rgb": list(preset.mean),
        "std_rgb": list(preset.std),
    }


def checkpoint_thresholds(ckpt: Checkpoint) -> Thresholds:
    """The checkpoint's thresholds, refused in one line when one is not finite and > 0."""
    try:
        return Thresholds.from_dict(ckpt.thresholds)
    except (TypeError, ValueError) as exc:
        raise UniadError(f"{ckpt.path}: {exc}") from None


def line_thresholds_of(ckpt: Checkpoint) -> Thresholds:
    """The thresholds a checkpoint decides with on this line: the thresholds file `calibrate`
    wrote beside it, else the checkpoint's own."""
    home = thresholds_path(ckpt.path)
    return read_file(home)[0] if home.is_file() else checkpoint_thresholds(ckpt)


def build_metadata(
    ckpt: Checkpoint,
    name: str,
    batch: int | None,
    opset: int,
    precision: str,
    frame_size: tuple[int, int] | None = None,
    roi: tuple[int, int, int, int] | None = None,
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
        thresholds=checkpoint_thresholds(ckpt),
        backbone_pretrained=ckpt.model.backbone_info.pretrained,
        backbone_provenance=ckpt.backbone_provenance,
        checkpoint_sha256=ckpt.sha256,
        checkpoint_path=str(ckpt.path.resolve()) if ckpt.sha256 else "",
        precision=precision,
        batch=batch,
        opset=opset,
        versions=package_versions(),
        preprocessing=preprocessing(preset, frame_size, roi),
        preset_config=json.loads(json.dumps(preset.to_dict())),  # tuples -> lists, as read
        gflops=round(gflops(preset), 3),
        frame_size=frame_size,
        roi=roi,
    )
