"""What every backbone shares: `Backbone`, a frozen, eval-only feature extractor that records its
weights' provenance and loads an ImageNet state dict by key.

Apart from `backbone.py` (which builds one from the preset) so that the backbone modules
(`efficientnet.py`, `efficientnet_lite.py`) subclass it while `backbone.py` imports them: no
import circle between the seam and its entries.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..backbones import BackboneSpec
from ..errors import UniadError
from ..fileio import sha256_file

WEIGHTS_FLAG = "--backbone-weights"


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
