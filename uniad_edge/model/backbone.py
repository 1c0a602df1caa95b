"""The frozen backbone seam: `build_backbone(preset)` builds the network the preset's backbone
names in `uniad_edge.backbones`, and loads its ImageNet weights or initialises it at random.

`CONSTRUCTORS` maps each backbone row to the code that builds it. `Backbone` (in
`backbone_base.py`) holds what every backbone shares; a subclass adds its layers and `forward`
(see `efficientnet.py`, `efficientnet_lite.py`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from ..backbones import BackboneSpec
from ..errors import UniadError
from ..presets import Preset
from .backbone_base import WEIGHTS_FLAG, Backbone
from .resize import resize_bilinear

INITS = ("none", "random", "imagenet")
Constructor = Callable[[BackboneSpec, tuple[int, ...]], Backbone]


def _efficientnet(spec: BackboneSpec, taps: tuple[int, ...]) -> Backbone:
    from .efficientnet import EfficientNetBackbone  # needs efficientnet_pytorch

    return EfficientNetBackbone(spec, taps)


def _efficientnet_lite(spec: BackboneSpec, taps: tuple[int, ...]) -> Backbone:
    from .efficientnet_lite import EfficientNetLiteBackbone

    return EfficientNetLiteBackbone(spec, taps)


CONSTRUCTORS: dict[str, Constructor] = {
    "efficientnet-b4": _efficientnet,
    "efficientnet-lite0": _efficientnet_lite,
}
"""Each `uniad_edge.backbones.BACKBONES` row's constructor, by name: the config table holds data
only, the code that builds it lives here, in the model layer. Each factory imports its module
when a model is built, so a Lite0-only install never needs efficientnet_pytorch."""


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
    if spec.name not in CONSTRUCTORS:
        raise ValueError(f"backbone {spec.name!r} has no entry in model.backbone.CONSTRUCTORS")
    backbone = CONSTRUCTORS[spec.name](spec, preset.taps)
    if init == "imagenet":
        backbone.load_imagenet(resolve_imagenet_weights(spec, weights))
    elif init == "random":
        backbone.init_random()
    return backbone


def resize_concat(features: list[Tensor], size: tuple[int, int]) -> Tensor:
    """The official MFCN neck: bilinear (align_corners=True) resize of every tap, then concat
    (by constant scales: see `resize.py`)."""
    return torch.cat([resize_bilinear(f, size, align_corners=True) for f in features], dim=1)
