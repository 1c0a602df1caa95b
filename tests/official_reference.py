"""An independent re-statement of the official UniAD forward, for parity tests.

Written from the spec (../shared/docs/uniad-spec.md) and the official code's maths, never its
modules. Reconstruction: sequence-first tensors, torch's own nn.MultiheadAttention, a -inf mask
built with loops and the batch built with torch.cat, exactly the constructs our model replaces.
Backbone: EfficientNet-B4 as plain functional ops over a state dict, with the official static
"same" padding computed for B4's declared 380 px input whatever the real input size. Neck (MFCN):
bilinear, align_corners=True resize of each tap by stride / 16, then concat. Every function
takes a state dict in the official key layout.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def official_mask(h: int, w: int, kh: int, kw: int) -> Tensor:
    mask = torch.ones(h, w, h, w)
    for h1 in range(h):
        for w1 in range(w):
            mask[
                h1,
                w1,
                max(h1 - kh // 2, 0) : min(h1 + kh // 2 + 1, h),
                max(w1 - kw // 2, 0) : min(w1 + kw // 2 + 1, w),
            ] = 0
    mask = mask.view(h * w, h * w)
    return mask.masked_fill(mask == 0, float("-inf")).masked_fill(mask == 1, 0.0)


def _mha(state: dict[str, Tensor], prefix: str, dim: int, nhead: int) -> nn.MultiheadAttention:
    weight = state[prefix + "in_proj_weight"]
    attn = nn.MultiheadAttention(dim, nhead, dtype=weight.dtype, device=weight.device)
    attn.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    return attn.eval()


def _ln(state: dict[str, Tensor], prefix: str, x: Tensor) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], state[prefix + "weight"], state[prefix + "bias"])


def _ffn(state: dict[str, Tensor], prefix: str, x: Tensor) -> Tensor:
    x = F.relu(F.linear(x, state[prefix + "linear1.weight"], state[prefix + "linear1.bias"]))
    return F.linear(x, state[prefix + "linear2.weight"], state[prefix + "linear2.bias"])


@torch.no_grad()
def official_reconstruct(
    state: dict[str, Tensor], feature_align: Tensor, nhead: int = 8, neighbor: int = 7
) -> Tensor:
    """feature_align [B, C, H, W] -> feature_rec [B, C, H, W], official semantics, eval mode."""
    s = {k.removeprefix("module.").removeprefix("reconstruction."): v for k, v in state.items()}
    b, c, h, w = feature_align.shape
    tokens = feature_align.flatten(2).permute(2, 0, 1)  # (HW) x B x C
    x = F.linear(tokens, s["input_proj.weight"], s["input_proj.bias"])
    dim = x.shape[-1]
    col, row = s["pos_embed.col_embed.weight"], s["pos_embed.row_embed.weight"]
    pos = torch.cat(
        [col.unsqueeze(0).repeat(h, 1, 1), row.unsqueeze(1).repeat(1, w, 1)], dim=-1
    ).flatten(0, 1)
    pos = torch.cat([pos.unsqueeze(1)] * b, dim=1)
    mask = official_mask(h, w, neighbor, neighbor).to(feature_align.device, feature_align.dtype)
    n_enc = len({k.split(".")[3] for k in s if k.startswith("transformer.encoder.layers.")})
    n_dec = len({k.split(".")[3] for k in s if k.startswith("transformer.decoder.layers.")})
    for i in range(n_enc):
        p = f"transformer.encoder.layers.{i}."
        q = x + pos
        x = _ln(
            s, p + "norm1.", x + _mha(s, p + "self_attn.", dim, nhead)(q, q, x, attn_mask=mask)[0]
        )
        x = _ln(s, p + "norm2.", x + _ffn(s, p, x))
    memory, out = x, x
    for i in range(n_dec):
        p = f"transformer.decoder.layers.{i}."
        t = torch.cat([s[p + "learned_embed.weight"].unsqueeze(1)] * b, dim=1)
        a1 = _mha(s, p + "self_attn.", dim, nhead)(t + pos, memory + pos, memory, attn_mask=mask)[0]
        t = _ln(s, p + "norm1.", t + a1)
        a2 = _mha(s, p + "multihead_attn.", dim, nhead)(t + pos, out + pos, out, attn_mask=mask)[0]
        t = _ln(s, p + "norm2.", t + a2)
        out = _ln(s, p + "norm3.", t + _ffn(s, p, t))
    out = _ln(s, "transformer.decoder.norm.", out)
    rec = F.linear(out, s["output_proj.weight"], s["output_proj.bias"])
    return rec.permute(1, 2, 0).reshape(b, c, h, w)


def to_official_state(model: nn.Module) -> dict[str, Tensor]:
    """Our state dict in the official ckpt.pth.tar layout (module. prefix, Linear projections,
    the unused EfficientNet head and fc included as the official files have them)."""
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith(("input_proj.weight", "output_proj.weight")) and key.startswith("recon"):
            value = value[:, :, 0, 0]
        state["module." + key] = value.clone()
    state["module.backbone._conv_head.weight"] = torch.zeros(1792, 448, 1, 1)
    state["module.backbone._fc.weight"] = torch.zeros(1000, 1792)
    state["module.backbone._fc.bias"] = torch.zeros(1000)
    return state


# EfficientNet-B4 (width 1.4, depth 1.8, declared input 380 px, BatchNorm eps 1e-3): per stage
# the number of blocks and the stride of its first block (the B0 table scaled by depth 1.8).
B4_STAGES = ((2, 1), (4, 2), (4, 2), (6, 2), (6, 1), (8, 2), (2, 1))
B4_IMAGE_SIZE = 380
BN_EPS = 1e-3


def _bn(s: dict[str, Tensor], prefix: str, x: Tensor) -> Tensor:
    scale = s[prefix + "weight"] / torch.sqrt(s[prefix + "running_var"] + BN_EPS)
    shift = s[prefix + "bias"] - s[prefix + "running_mean"] * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def _swish(x: Tensor) -> Tensor:
    return x * torch.sigmoid(x)


def _same_conv(x: Tensor, weight: Tensor, stride: int, declared: int, groups: int = 1) -> Tensor:
    """TensorFlow "same" padding computed for the declared (not the actual) input side."""
    k = weight.shape[-1]
    total = max((math.ceil(declared / stride) - 1) * stride + k - declared, 0)
    x = F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))
    return F.conv2d(x, weight, stride=stride, groups=groups)


@torch.no_grad()
def official_backbone(
    state: dict[str, Tensor], image: Tensor, taps: tuple[int, ...], declared: int = B4_IMAGE_SIZE
) -> list[Tensor]:
    """Normalised RGB [B, 3, H, W] -> the outputs of blocks `taps`, eval mode."""
    s = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    size = math.ceil(declared / 2)
    x = _swish(_bn(s, "_bn0.", _same_conv(image, s["_conv_stem.weight"], 2, declared)))
    strides = [stride if i == 0 else 1 for count, stride in B4_STAGES for i in range(count)]
    features = []
    for index in range(max(taps) + 1):
        p, stride = f"_blocks.{index}.", strides[index]
        y = x
        if p + "_expand_conv.weight" in s:
            y = _swish(_bn(s, p + "_bn0.", F.conv2d(y, s[p + "_expand_conv.weight"])))
        depthwise = s[p + "_depthwise_conv.weight"]
        y = _same_conv(y, depthwise, stride, size, groups=depthwise.shape[0])
        y = _swish(_bn(s, p + "_bn1.", y))
        squeezed = F.adaptive_avg_pool2d(y, 1)
        squeezed = _swish(F.conv2d(squeezed, s[p + "_se_reduce.weight"], s[p + "_se_reduce.bias"]))
        squeezed = F.conv2d(squeezed, s[p + "_se_expand.weight"], s[p + "_se_expand.bias"])
        y = torch.sigmoid(squeezed) * y
        y = _bn(s, p + "_bn2.", F.conv2d(y, s[p + "_project_conv.weight"]))
        if stride == 1 and y.shape == x.shape:
            y = y + x  # identity skip (drop connect is off in eval)
        x, size = y, math.ceil(size / stride)
        if index in taps:
            features.append(x)
    return features


@torch.no_grad()
def official_neck(features: list[Tensor], strides: list[int], out_stride: int = 16) -> Tensor:
    """MFCN: UpsamplingBilinear2d(scale_factor=stride / out_stride) per tap, then concat."""
    resized = [
        F.interpolate(f, scale_factor=stride / out_stride, mode="bilinear", align_corners=True)
        for f, stride in zip(features, strides, strict=True)
    ]
    return torch.cat(resized, dim=1)
