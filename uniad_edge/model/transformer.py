"""UniAD's reconstruction transformer, written to export cleanly.

Same parameters and names as the official code (so its checkpoints load), but batch-first, the
neighbour mask a precomputed boolean constant, the position embedding and the learned queries
broadcast over the batch (never expanded: an Expand to the batch size needs a Shape node, which
TensorRT 8.6 misreads), and no Python loops or device calls in `forward`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HALF_DTYPES = (torch.float16, torch.bfloat16)
AUTOCAST_DEVICES = ("cpu", "cuda", "xpu", "mps")


def neighbour_mask(feature_size: tuple[int, int], neighbor_size: tuple[int, int]) -> Tensor:
    """Boolean [HW, HW] mask, True where token (h1, w1) may not attend: its clipped kh x kw
    window (the official code adds -inf there)."""
    h, w = feature_size
    kh, kw = neighbor_size
    rows = torch.arange(h).repeat_interleave(w)
    cols = torch.arange(w).repeat(h)
    near = ((rows[:, None] - rows[None, :]).abs() <= kh // 2) & (
        (cols[:, None] - cols[None, :]).abs() <= kw // 2
    )
    return near


class PositionEmbedding(nn.Module):
    """Learned row/column embedding; token (h, w) gets concat(col[w], row[h]) as officially."""

    def __init__(self, feature_size: tuple[int, int], dim: int) -> None:
        super().__init__()
        self.feature_size = feature_size
        self.row_embed = nn.Embedding(feature_size[0], dim // 2)
        self.col_embed = nn.Embedding(feature_size[1], dim - dim // 2)

    def forward(self) -> Tensor:
        h, w = self.feature_size
        col = self.col_embed.weight.unsqueeze(0).expand(h, w, -1)
        row = self.row_embed.weight.unsqueeze(1).expand(h, w, -1)
        return torch.cat([col, row], dim=-1).reshape(h * w, -1)


class Attention(nn.Module):
    """Multi-head attention with nn.MultiheadAttention's parameter names, batch-first."""

    def __init__(self, dim: int, nhead: int, dropout: float) -> None:
        super().__init__()
        self.nhead = nhead
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: Tensor, index: int) -> Tensor:
        dim = x.shape[-1]
        weight = self.in_proj_weight[index * dim : (index + 1) * dim]
        bias = self.in_proj_bias[index * dim : (index + 1) * dim]
        y = F.linear(x, weight, bias)
        return y.unflatten(-1, (self.nhead, dim // self.nhead)).transpose(1, 2)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None) -> Tensor:
        # q is scaled by 1/sqrt(d) BEFORE the product, as fused attention kernels do: the
        # unscaled q.k can overflow float16 (65504) even where the scaled logit fits.
        q = self._heads(query, 0) * (1.0 / math.sqrt(query.shape[-1] // self.nhead))
        k, v = self._heads(key, 1), self._heads(value, 2)
        if q.dtype in HALF_DTYPES or _autocasting(q.device.type):
            # Half or autocast (never traced: export runs in float32): logits and softmax in
            # float32, so no logit a float32 model can reach is lost to float16's range.
            with torch.autocast(q.device.type, enabled=False):
                weights = _attention_weights(q.float(), k.float(), mask).to(v.dtype)
        else:
            weights = _attention_weights(q, k, mask)
        weights = F.dropout(weights, self.dropout, self.training)
        out = (weights @ v).transpose(1, 2).flatten(2)
        return self.out_proj(out)


def _autocasting(device_type: str) -> bool:
    """Autocast is on for this device (False for devices autocast does not know, such as the
    meta tensors of an export trace)."""
    return device_type in AUTOCAST_DEVICES and torch.is_autocast_enabled(device_type)


def _attention_weights(q: Tensor, k: Tensor, mask: Tensor | None) -> Tensor:
    """softmax(q kᵀ) over the keys, with q already scaled by 1/sqrt(d)."""
    logits = q @ k.transpose(-2, -1)
    if mask is not None:
        # Replaced, not added to: an additive finite mask is overcome by logits larger than
        # it, and -inf may not enter the graph. No finite logit is below the dtype's lowest
        # value, so masked keys get exactly zero weight (the --half converter clamps this
        # float32 constant to float16's lowest, -65504).
        logits = logits.masked_fill(mask, torch.finfo(logits.dtype).min)
    return logits.softmax(dim=-1)


class FeedForward(nn.Module):
    """Mixin holding the 256-1024-256 ReLU FFN under the official names linear1/linear2."""

    def _init_ffn(self, dim: int, hidden: int, dropout: float) -> None:
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def ffn(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))


class EncoderLayer(FeedForward, nn.Module):
    """Post-norm: x = norm1(x + attn(x+pos, x+pos, x)); x = norm2(x + ffn(x))."""

    def __init__(self, dim: int, nhead: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = Attention(dim, nhead, dropout)
        self._init_ffn(dim, hidden, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor, mask: Tensor | None) -> Tensor:
        qk = x + pos
        x = self.norm1(x + self.dropout1(self.self_attn(qk, qk, x, mask)))
        return self.norm2(x + self.dropout2(self.ffn(x)))


class DecoderLayer(FeedForward, nn.Module):
    """Own learned query; attends to the encoder memory, then to the previous layer's output."""

    def __init__(self, dim: int, nhead: int, hidden: int, dropout: float, tokens: int) -> None:
        super().__init__()
        self.learned_embed = nn.Embedding(tokens, dim)
        self.self_attn = Attention(dim, nhead, dropout)
        self.multihead_attn = Attention(dim, nhead, dropout)
        self._init_ffn(dim, hidden, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self,
        out: Tensor,
        memory: Tensor,
        pos: Tensor,
        mask_memory: Tensor | None,
        mask_out: Tensor | None,
    ) -> Tensor:
        # [1, HW, C]: broadcast against the [B, HW, C] memory by the attention and the residual.
        t = self.learned_embed.weight.unsqueeze(0)
        attn = self.self_attn(t + pos, memory + pos, memory, mask_memory)
        t = self.norm1(t + self.dropout1(attn))
        attn = self.multihead_attn(t + pos, out + pos, out, mask_out)
        t = self.norm2(t + self.dropout2(attn))
        return self.norm3(t + self.dropout3(self.ffn(t)))


class Encoder(nn.Module):
    def __init__(self, layers: list[EncoderLayer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor, pos: Tensor, mask: Tensor | None) -> Tensor:
        for layer in self.layers:
            x = layer(x, pos, mask)
        return x


class Decoder(nn.Module):
    def __init__(self, layers: list[DecoderLayer], dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, memory: Tensor, pos: Tensor, mask_memory: Tensor | None, mask_out: Tensor | None
    ) -> Tensor:
        out = memory
        for layer in self.layers:
            out = layer(out, memory, pos, mask_memory, mask_out)
        return self.norm(out)


class Transformer(nn.Module):
    """Encoder + decoder over [B, HW, C] tokens; masks per attention as the official config."""

    def __init__(
        self,
        dim: int,
        nhead: int,
        num_encoder_layers: int,
        num_decoder_layers: int,
        dim_feedforward: int,
        dropout: float,
        feature_size: tuple[int, int],
        neighbor_size: tuple[int, int],
        neighbor_mask: tuple[bool, bool, bool],
    ) -> None:
        super().__init__()
        tokens = feature_size[0] * feature_size[1]
        self.encoder = Encoder(
            [EncoderLayer(dim, nhead, dim_feedforward, dropout) for _ in range(num_encoder_layers)]
        )
        self.decoder = Decoder(
            [
                DecoderLayer(dim, nhead, dim_feedforward, dropout, tokens)
                for _ in range(num_decoder_layers)
            ],
            dim,
        )
        self.use_mask = tuple(neighbor_mask)
        self.register_buffer("mask", neighbour_mask(feature_size, neighbor_size), persistent=False)

    def _mask(self, index: int) -> Tensor | None:
        return self.mask if self.use_mask[index] else None

    def forward(self, tokens: Tensor, pos: Tensor) -> Tensor:
        memory = self.encoder(tokens, pos, self._mask(0))
        return self.decoder(memory, pos, self._mask(1), self._mask(2))
