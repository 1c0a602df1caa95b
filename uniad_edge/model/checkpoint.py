"""Checkpoints: the project's own versioned format, and official UniAD `ckpt.pth.tar` files.

Everything is read with `torch.load(..., weights_only=True)`: a file holding pickled Python
objects is refused without running them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import torch

from ..backbones import DEFAULT_BACKBONE, get_backbone
from ..checkpoint_file import read_checkpoint_file
from ..errors import UniadError
from ..fileio import atomic_path, sha256_file
from ..presets import PRESETS, Preset
from .backbone import build_backbone
from .uniad import UniAD

CHECKPOINT_FORMAT = "uniad-edge"
CHECKPOINT_VERSION = 1
PROJECTIONS = ("reconstruction.input_proj.weight", "reconstruction.output_proj.weight")
# Official files do not record their backbone weights; UniAD trains on ImageNet ones.
OFFICIAL_BACKBONE_PROVENANCE = "ImageNet-pretrained assumed (official checkpoint)"

log = logging.getLogger(__name__)


@dataclass
class Checkpoint:
    """A loaded model plus what deployment needs: classes, thresholds, provenance."""

    model: UniAD
    path: Path
    kind: str  # "uniad-edge" or "official"
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] | None = None

    @property
    def preset(self) -> Preset:
        return self.model.preset

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("class_names", []))

    @property
    def thresholds(self) -> dict[str, Any]:
        return dict(self.meta.get("thresholds") or {})

    @property
    def backbone_provenance(self) -> str:
        """Where the backbone weights came from, as far as the file can tell."""
        if self.kind == "official":
            return OFFICIAL_BACKBONE_PROVENANCE
        info = self.model.backbone_info
        if not info.pretrained:
            return "random-init"
        label = self.preset.backbone_spec.label
        return f"{label} ImageNet weights sha256 {info.weights_sha256 or 'unrecorded'}"


def save_checkpoint(
    path: str | os.PathLike[str],
    model: UniAD,
    meta: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> Path:
    """Write atomically: weights, preset, backbone provenance, `meta` (classes, thresholds...)
    and optional `training` state (optimizer, scheduler, epoch) for `--resume`."""
    info = model.backbone_info
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "preset": model.preset.to_dict(),
        "backbone": {"pretrained": info.pretrained, "weights_sha256": info.weights_sha256},
        "state_dict": model.state_dict(),
        "meta": dict(meta or {}),
    }
    if training is not None:
        payload["training"] = training
    target = Path(path)
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
    return target


def load_checkpoint(path: str | os.PathLike[str], preset: Preset | None = None) -> Checkpoint:
    """Load our format or an official UniAD checkpoint (preset inferred from tensor shapes)."""
    file = Path(path)
    payload = read_checkpoint_file(file)
    digest = sha256_file(file)
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        return _load_own(file, digest, payload)
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not any(
        isinstance(k, str) and "reconstruction." in k for k in state
    ):
        raise UniadError(
            f"{file}: neither a uniad-edge nor an official UniAD checkpoint "
            "(no reconstruction weights found)"
        )
    state = {k.removeprefix("module."): v for k, v in state.items()}
    chosen = preset or infer_official_preset(state, file)
    model = UniAD(chosen, build_backbone(chosen))
    _load_state(model, convert_official_state(state, model), file)
    model.backbone.pretrained = True  # see OFFICIAL_BACKBONE_PROVENANCE: assumed, not recorded
    meta = {"source": "official UniAD checkpoint", "epoch": payload.get("epoch")}
    return Checkpoint(model.eval(), file, "official", digest, meta)


def _load_own(file: Path, digest: str, payload: dict[str, Any]) -> Checkpoint:
    version = payload.get("version")
    if version != CHECKPOINT_VERSION:
        raise UniadError(
            f"{file}: checkpoint format version {version} is not supported by this uniad-edge "
            f"(expects {CHECKPOINT_VERSION}); upgrade uniad-edge"
        )
    try:
        preset = Preset.from_dict(payload["preset"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UniadError(f"{file}: invalid preset in checkpoint ({exc})") from None
    model = UniAD(preset, build_backbone(preset))
    _load_state(model, payload.get("state_dict") or {}, file)
    backbone = payload.get("backbone") or {}
    model.backbone.pretrained = bool(backbone.get("pretrained", False))
    model.backbone.weights_sha256 = backbone.get("weights_sha256")
    return Checkpoint(
        model.eval(),
        file,
        CHECKPOINT_FORMAT,
        digest,
        payload.get("meta") or {},
        payload.get("training"),
    )


def _load_state(model: UniAD, state: dict[str, Any], file: Path) -> None:
    """Strict load with the first offending key named, in one line."""
    own = model.state_dict()
    for key, value in own.items():
        if key not in state:
            raise UniadError(f"{file}: missing key {key}; the checkpoint does not fit this model")
        if tuple(state[key].shape) != tuple(value.shape):
            raise UniadError(
                f"{file}: key {key} has shape {tuple(state[key].shape)}, the model expects "
                f"{tuple(value.shape)}; pass the matching --preset"
            )
    extra = [k for k in state if k not in own]
    if extra:
        raise UniadError(f"{file}: unexpected key {extra[0]}; the checkpoint does not fit")
    model.load_state_dict(state)


def convert_official_state(state: dict[str, Any], model: UniAD) -> dict[str, Any]:
    """Official names -> ours: Linear projections become 1x1 convs; unused backbone parts go."""
    own = model.state_dict()
    converted = {}
    for key, value in state.items():
        if key.startswith("backbone.") and key not in own:
            continue  # head conv, fc and blocks past the last tap: never computed here
        converted[key] = value[..., None, None] if key in PROJECTIONS and value.ndim == 2 else value
    return converted


def infer_official_preset(state: dict[str, Any], file: Path) -> Preset:
    """Recover the preset from tensor shapes: channels -> stages, position table -> grid."""
    layers = {part: _layer_count(state, part, file) for part in ("encoder", "decoder")}
    _check_depth(layers["encoder"], layers["decoder"], file)
    try:
        dim, channels = state["reconstruction.input_proj.weight"].shape[:2]
        fh = state["reconstruction.pos_embed.row_embed.weight"].shape[0]
        fw = state["reconstruction.pos_embed.col_embed.weight"].shape[0]
        ffn = state["reconstruction.transformer.encoder.layers.0.linear1.weight"].shape[0]
    except KeyError as exc:
        raise UniadError(f"{file}: missing key {exc.args[0]}; not a UniAD checkpoint") from None
    for known in PRESETS.values():
        if known.backbone != DEFAULT_BACKBONE:
            continue  # official checkpoints are all EfficientNet-B4
        shape = (known.channels, known.feature_size, known.hidden_dim, known.dim_feedforward)
        depth = (known.num_encoder_layers, known.num_decoder_layers)
        if shape == (channels, (fh, fw), dim, ffn) and depth == (
            layers["encoder"],
            layers["decoder"],
        ):
            return known
    stages = _stages_for(int(channels), file)
    return Preset(
        name=f"official-{channels}ch-{fh}x{fw}",
        input_size=(fh * 16, fw * 16),
        stages=stages,
        output_stride=16,
        hidden_dim=int(dim),
        num_encoder_layers=layers["encoder"],
        num_decoder_layers=layers["decoder"],
        dim_feedforward=int(ffn),
    )


def _layer_count(state: dict[str, Any], part: str, file: Path) -> int:
    """How many `part` (encoder/decoder) layers the file holds; a gap (layers 0, 1, 3) is a
    damaged file, refused here rather than reported as an unexpected key."""
    prefix = f"reconstruction.transformer.{part}.layers."
    found = {int(k.split(".")[4]) for k in state if k.startswith(prefix)}
    missing = sorted(set(range(max(found, default=-1) + 1)) - found)
    if missing or not found:
        what = f"lacks {part} layer {missing[0]}" if missing else f"has no {part} layers"
        raise UniadError(
            f"{file}: this official UniAD checkpoint {what} (damaged or incomplete file); "
            "re-download it"
        )
    return len(found)


def _check_depth(encoder: int, decoder: int, file: Path) -> None:
    """Official UniAD has 4 encoder and 4 decoder layers. Unequal depths mean layers were lost
    (a file missing its last decoder layer would otherwise load as a different, 3-layer model):
    refused. Equal depths other than 4 may be a model trained so: loaded, with a warning."""
    official = (Preset.num_encoder_layers, Preset.num_decoder_layers)
    if (encoder, decoder) == official:
        return
    depth = f"{encoder} encoder and {decoder} decoder layers, official UniAD has {official[0]} + "
    depth += f"{official[1]}"
    if encoder != decoder:
        part, have, want = (
            ("decoder", decoder, encoder) if decoder < encoder else ("encoder", encoder, decoder)
        )
        lost = f"layer {have} is" if want - have == 1 else f"layers {have}-{want - 1} are"
        raise UniadError(
            f"{file}: this official UniAD checkpoint has {depth}: {part} {lost} missing; "
            "re-download it, or pass the matching --preset if it was trained so"
        )
    log.warning(
        "%s: this official UniAD checkpoint has %s; loading it as a %d-layer model (a file "
        "that lost layers scores wrongly: check it against its source)",
        file,
        depth,
        encoder,
    )


def _stages_for(channels: int, file: Path) -> tuple[int, ...]:
    """Stages whose channels add up; the deepest such set wins (the official guidance)."""
    spec = get_backbone(DEFAULT_BACKBONE)  # the official code's backbone
    stages = sorted(spec.stages)
    for count in range(len(stages), 0, -1):
        for subset in sorted(combinations(stages, count), key=lambda s: s[::-1], reverse=True):
            if spec.channels(subset) == channels:
                return subset
    raise UniadError(
        f"{file}: {channels} input channels match no set of {spec.name} stages; pass --preset"
    )
