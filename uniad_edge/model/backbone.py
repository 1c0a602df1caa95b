"""The frozen backbone seam: `build_backbone(preset)` builds the network the preset's backbone
names in `uniad_edge.backbones`, and loads its ImageNet weights or initialises it at random.

`Backbone` holds what every backbone shares (frozen, eval-only, weights provenance, loading an
ImageNet state dict by key); a subclass adds its layers and `forward` (see `efficientnet.py`,
`efficientnet_lite.py`).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from ..backbones import BackboneSpec
from ..errors import UniadError
from ..fileio import sha256_file
from ..presets import Preset
from ..targets import load_target
from .resize import resize_bilinear

WEIGHTS_FLAG = "--backbone-weights"
INITS = ("none", "random", "imagenet")


class Backbone(nn.Module):
    """A frozen feature extractor stopped after its last tap; never trained, always in eval.

    Subclasses build their layers in `__init__(spec, taps)` (then call `freeze`) and return the
    tapped outputs from `forward`, shallowest first.
    """

    def __init__(self, spec: BackboneSpec, taps: tuple[int, ...]) -> None:
        super().__init__()
        self.spec = spec
        self.taps = tuple(taps)
        self.pretrained = False
        self.weights_sha256: str | None = None

    def tapped(self, x: Tensor, blocks: nn.ModuleList) -> list[Tensor]:
        """Run `blocks` in order on the stem's output, keeping the tapped blocks' outputs."""
        features = []
        for idx, block in enumerate(blocks):
            x = block(x)
            if idx in self.taps:
                features.append(x)
        return features

    def freeze(self) -> None:
        self.requires_grad_(False)
        self.eval()

    def init_random(self) -> None:
        """Kaiming-normal (fan-in, ReLU gain) convolutions for an explicit random-init backbone.

        efficientnet-pytorch's default init with BatchNorm at identity statistics shrinks
        activations ~30x per stage (stage 4 of mvtec-224 ends near 1e-8, below float16's range),
        so only stage 1 would carry signal. This keeps every tap within ~20x of the first.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def train(self, mode: bool = True) -> Backbone:
        """Frozen: BatchNorm statistics and drop-connect stay in inference mode."""
        return super().train(False)

    def load_imagenet(self, path: Path) -> None:
        """Load the ImageNet file by key; keys past the last tap (head, fc) are ignored."""
        label = self.spec.name
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (any failure means an unusable weights file)
            raise UniadError(
                f"{path}: cannot read {label} weights ({type(exc).__name__}); "
                f"pass a valid {self.spec.weights_file} with {WEIGHTS_FLAG}"
            ) from None
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise UniadError(
                f"{path}: not {label} weights (missing {missing[0]}); "
                f"pass {self.spec.weights_file} with {WEIGHTS_FLAG}"
            )
        for key, value in own.items():
            if state[key].shape != value.shape:
                raise UniadError(
                    f"{path}: {key} has shape {tuple(state[key].shape)}, expected "
                    f"{tuple(value.shape)}; pass {label} weights with {WEIGHTS_FLAG}"
                )
        self.load_state_dict({k: state[k] for k in own})
        self.pretrained = True
        self.weights_sha256 = sha256_file(path)


def hub_weights_path(spec: BackboneSpec) -> Path:
    """Where torch hub (and efficientnet-pytorch's downloader) caches the ImageNet file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / spec.weights_file


def packaged_weights_path(spec: BackboneSpec) -> Path | None:
    """The ImageNet file inside the installed pip package that ships it, else None.

    Found without importing the package (its code never runs)."""
    package = spec.weights_package
    if package is None:
        return None
    try:
        found = importlib.util.find_spec(package.module)
    except (ImportError, ValueError):
        return None
    if found is None or found.origin is None:
        return None
    path = Path(found.origin).parent / package.path
    return path if path.is_file() else None


def local_imagenet_weights(spec: BackboneSpec) -> Path | None:
    """The installed weights package's file, else the torch hub cache's; never a download."""
    packaged = packaged_weights_path(spec)
    if packaged is not None:
        return packaged
    cached = hub_weights_path(spec)
    return cached if cached.is_file() else None


def missing_weights_hint(spec: BackboneSpec) -> str:
    """How to get `spec`'s ImageNet weights: install its package, or pass the file."""
    ways = [f"pass {spec.weights_file} with {WEIGHTS_FLAG}"]
    if spec.weights_package is not None:
        ways.insert(0, spec.weights_package.install_hint)
    elif spec.weights_url:
        ways[0] = f"download {spec.weights_url} and pass it with {WEIGHTS_FLAG}"
    return " or ".join(ways)


def resolve_imagenet_weights(spec: BackboneSpec, path: str | os.PathLike[str] | None) -> Path:
    """Explicit path, else the installed weights package, else the torch hub cache, else
    download into it where the backbone has a URL (one-line error offline)."""
    if path is not None:
        explicit = Path(path)
        if not explicit.is_file():
            raise UniadError(
                f"{explicit}: no such file; pass {spec.weights_file} with {WEIGHTS_FLAG}"
            )
        return explicit
    local = local_imagenet_weights(spec)
    if local is not None:
        return local
    if not spec.weights_url:
        raise UniadError(
            f"{spec.name} ImageNet weights are not installed; {missing_weights_hint(spec)}, "
            "or use --random-backbone"
        )
    cached = hub_weights_path(spec)
    try:
        torch.hub.download_url_to_file(spec.weights_url, str(cached), progress=True)
    except Exception as exc:  # noqa: BLE001  (offline, proxy, DNS: all mean the same to the user)
        raise UniadError(
            f"cannot download {spec.name} ImageNet weights ({type(exc).__name__}: offline?); "
            f"{missing_weights_hint(spec)}, or use --random-backbone"
        ) from None
    return cached


def build_backbone(
    preset: Preset, init: str = "none", weights: str | os.PathLike[str] | None = None
) -> Backbone:
    """The preset's backbone, trimmed after its last tap and frozen.

    `init`: "none" leaves the constructor's weights (a checkpoint or the meta device fills them),
    "random" is the explicit random-init choice (tests, benchmarks, offline demo), "imagenet"
    loads `weights`, else the installed weights package, else the hub cache, else a download.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, not {init!r}")
    spec = preset.backbone_spec
    backbone: Backbone = load_target(spec.constructor)(spec, preset.taps)
    if init == "imagenet":
        backbone.load_imagenet(resolve_imagenet_weights(spec, weights))
    elif init == "random":
        backbone.init_random()
    return backbone


def resize_concat(features: list[Tensor], size: tuple[int, int]) -> Tensor:
    """The official MFCN neck: bilinear (align_corners=True) resize of every tap, then concat
    (by constant scales: see `resize.py`)."""
    return torch.cat([resize_bilinear(f, size, align_corners=True) for f in features], dim=1)
