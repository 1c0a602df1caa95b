"""Frozen EfficientNet-B4 trimmed after the last tap, and the neck that resizes and concatenates.

The stem and blocks keep lukemelas' module names (`_conv_stem`, `_bn0`, `_blocks.N`) so official
UniAD checkpoints and the ImageNet file load by key. Padding is the package's static "same"
padding computed for B4's native 380 px, exactly as the official code builds it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from efficientnet_pytorch import EfficientNet
from torch import Tensor, nn

from ..errors import UniadError
from ..fileio import sha256_file

WEIGHTS_FILE = "efficientnet-b4-6ed6700e.pth"
WEIGHTS_URL = (
    "https://github.com/lukemelas/EfficientNet-PyTorch/releases/download/1.0/" + WEIGHTS_FILE
)
WEIGHTS_FLAG = "--backbone-weights"


class Backbone(nn.Module):
    """EfficientNet-B4 stem + blocks 0..max(taps); always in eval mode, never trained."""

    def __init__(self, taps: tuple[int, ...]) -> None:
        super().__init__()
        full = EfficientNet.from_name("efficientnet-b4")
        # Plain x*sigmoid(x): traceable, unlike the memory-efficient autograd.Function.
        full.set_swish(memory_efficient=False)
        self.taps = tuple(taps)
        self._conv_stem = full._conv_stem
        self._bn0 = full._bn0
        self._swish = full._swish
        self._blocks = nn.ModuleList(full._blocks[: max(self.taps) + 1])
        self.requires_grad_(False)
        self.eval()
        self.pretrained = False
        self.weights_sha256: str | None = None

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

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self._swish(self._bn0(self._conv_stem(x)))
        features = []
        for idx, block in enumerate(self._blocks):
            x = block(x)
            if idx in self.taps:
                features.append(x)
        return features

    def load_imagenet(self, path: Path) -> None:
        """Load the lukemelas ImageNet file; keys past the last tap (head, fc) are ignored."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (any failure means an unusable weights file)
            raise UniadError(
                f"{path}: cannot read EfficientNet-B4 weights ({type(exc).__name__}); "
                f"pass a valid {WEIGHTS_FILE} with {WEIGHTS_FLAG}"
            ) from None
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise UniadError(
                f"{path}: not EfficientNet-B4 weights (missing {missing[0]}); "
                f"pass {WEIGHTS_FILE} with {WEIGHTS_FLAG}"
            )
        for key, value in own.items():
            if state[key].shape != value.shape:
                raise UniadError(
                    f"{path}: {key} has shape {tuple(state[key].shape)}, expected "
                    f"{tuple(value.shape)}; pass EfficientNet-B4 weights with {WEIGHTS_FLAG}"
                )
        self.load_state_dict({k: state[k] for k in own})
        self.pretrained = True
        self.weights_sha256 = sha256_file(path)


def hub_weights_path() -> Path:
    """Where torch hub (and efficientnet-pytorch's downloader) caches the ImageNet file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def resolve_imagenet_weights(path: str | os.PathLike[str] | None) -> Path:
    """Explicit path, else the torch hub cache, else download into it (one-line error offline)."""
    if path is not None:
        explicit = Path(path)
        if not explicit.is_file():
            raise UniadError(f"{explicit}: no such file; pass {WEIGHTS_FILE} with {WEIGHTS_FLAG}")
        return explicit
    cached = hub_weights_path()
    if cached.is_file():
        return cached
    try:
        torch.hub.download_url_to_file(WEIGHTS_URL, str(cached), progress=True)
    except Exception as exc:  # noqa: BLE001  (offline, proxy, DNS: all mean the same to the user)
        raise UniadError(
            f"cannot download EfficientNet-B4 ImageNet weights ({type(exc).__name__}: offline?); "
            f"download {WEIGHTS_URL} and pass it with {WEIGHTS_FLAG}, or use --random-backbone"
        ) from None
    return cached


def build_backbone(
    taps: tuple[int, ...], weights: str | os.PathLike[str] | None = None, pretrained: bool = True
) -> Backbone:
    """`pretrained=False` is the explicit random-init choice (tests, benchmarks, offline demo)."""
    backbone = Backbone(taps)
    if pretrained:
        backbone.load_imagenet(resolve_imagenet_weights(weights))
    else:
        backbone.init_random()
    return backbone


def resize_concat(features: list[Tensor], size: tuple[int, int]) -> Tensor:
    """The official MFCN neck: bilinear (align_corners=True) resize of every tap, then concat."""
    return torch.cat(
        [
            f
            if tuple(f.shape[-2:]) == size
            else F.interpolate(f, size=size, mode="bilinear", align_corners=True)
            for f in features
        ],
        dim=1,
    )
