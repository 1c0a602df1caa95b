"""A random-init backbone whose features keep their scale, so tests and demos learn something.

efficientnet-pytorch's default initialisation (PyTorch's conv default with BatchNorm at its
identity running statistics) shrinks activations about 30x per stage: at mvtec-224's stage 4
the features are ~1e-8, so only the first stage carries any signal and a random-backbone model
scores near chance. Kaiming-normal fan-in convolutions keep every tap within ~20x of the first.
ImageNet weights replace all of this; it matters only for `--random-backbone`.
"""

from __future__ import annotations

from torch import nn


def init_random_backbone(backbone: nn.Module) -> None:
    """Kaiming-normal (fan-in, ReLU gain) conv weights and zero biases, in place."""
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
