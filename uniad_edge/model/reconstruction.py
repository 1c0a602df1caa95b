"""UniAD's reconstruction: 1x1 conv in, transformer, 1x1 conv out; feature jitter in training."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..presets import Preset
from .transformer import PositionEmbedding, Transformer


def feature_jitter(features: Tensor, scale: float) -> Tensor:
    """Per-token Gaussian noise scaled by ||f||_2 / C (the paper's feature jitter)."""
    channels = features.shape[1]
    norms = features.norm(dim=1, keepdim=True) / channels
    return features + torch.randn_like(features) * norms * scale


class Reconstruction(nn.Module):
    """[B, C, H, W] backbone features -> reconstructed features of the same shape."""

    def __init__(self, preset: Preset) -> None:
        super().__init__()
        dim, channels = preset.hidden_dim, preset.channels
        self.feature_size = preset.feature_size
        self.jitter_scale = preset.jitter_scale
        self.jitter_prob = preset.jitter_prob
        self.input_proj = nn.Conv2d(channels, dim, kernel_size=1)
        self.output_proj = nn.Conv2d(dim, channels, kernel_size=1)
        self.pos_embed = PositionEmbedding(preset.feature_size, dim)
        self.transformer = Transformer(
            dim,
            preset.nhead,
            preset.num_encoder_layers,
            preset.num_decoder_layers,
            preset.dim_feedforward,
            preset.dropout,
            preset.feature_size,
            preset.neighbor_size,
            preset.neighbor_mask,
        )
        self.init_weights()

    def init_weights(self, method: str = "xavier_uniform") -> None:
        """The official initialiser: xavier on every Conv2d/Linear weight, zero biases."""
        init = {"xavier_uniform": nn.init.xavier_uniform_, "xavier_normal": nn.init.xavier_normal_}
        if method not in init:
            raise ValueError(f"unknown init {method!r}; choose one of: {', '.join(init)}")
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                init[method](module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, features: Tensor) -> Tensor:
        x = features
        if self.training and self.jitter_scale > 0 and torch.rand(()) < self.jitter_prob:
            x = feature_jitter(x, self.jitter_scale)
        x = self.input_proj(x)
        batch, dim, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        out = self.transformer(tokens, self.pos_embed())
        return self.output_proj(out.transpose(1, 2).reshape(batch, dim, h, w))
