"""Issue 14 bug 3: no attention logit, however large, can see through the neighbour mask.

The official code adds -inf; ours may not put an inf in the graph, so masked logits are replaced
by the lowest finite value of the compute dtype. Checked against the official -inf semantics in
float64 with weights scaled until logits reach 1e5, and in float16 near its largest finite value.
"""

from __future__ import annotations

import math

import torch
from official_reference import official_reconstruct, to_official_state

from uniad_edge.model import build_model
from uniad_edge.model.transformer import Attention, neighbour_mask
from uniad_edge.presets import PRESETS

PRESET = PRESETS["mvtec-224"].replace(name="mask-224", num_encoder_layers=1, num_decoder_layers=1)


def _peak_logit(model: torch.nn.Module, run) -> float:
    """Largest |attention logit| any layer computes while `run()` executes."""
    peaks: list[float] = []

    def record(module, args, out) -> None:
        q, k = module._heads(args[0], 0), module._heads(args[1], 1)
        q, k = q.double(), k.double()
        peaks.append(float((q @ k.transpose(-2, -1)).abs().max()) / math.sqrt(q.shape[-1]))

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, Attention)]
    try:
        result = run()
    finally:
        for hook in hooks:
            hook.remove()
    return max(peaks), result


def test_logits_of_1e5_do_not_overcome_the_mask_official_minus_inf_semantics() -> None:
    torch.manual_seed(3)
    model = build_model(PRESET, pretrained=False).eval().double()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, Attention):
                module.in_proj_weight[: 2 * module.out_proj.in_features] *= 70.0  # q and k
    feats = torch.randn(2, PRESET.channels, *PRESET.feature_size, dtype=torch.float64) * 3
    with torch.no_grad():
        peak, ours = _peak_logit(model, lambda: model.reconstruction(feats))
    assert peak >= 1e5, peak
    theirs = official_reconstruct(to_official_state(model), feats)
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-9)


def test_masked_key_gets_zero_weight_in_float16_at_its_largest_logits() -> None:
    """The centre key's logit (2e4: q.k itself is 5.8e4, near float16's 65504) dwarfs every
    other; queries whose 7x7 window holds the centre must give it no weight at all."""
    dim = 16
    attn = Attention(dim, 2, 0.0).eval()
    with torch.no_grad():
        attn.in_proj_weight.copy_(torch.cat([120 * torch.eye(dim), torch.eye(dim), torch.eye(dim)]))
        attn.in_proj_bias.zero_()
        attn.out_proj.weight.copy_(torch.eye(dim))
        attn.out_proj.bias.zero_()
    attn.half()
    mask = neighbour_mask((9, 9), (7, 7))
    query = torch.ones(1, 81, dim).half()
    key = torch.ones(1, 81, dim)
    key[0, 40] = 60.0  # the centre token: a huge key
    value = torch.zeros(1, 81, dim)
    value[0, 40] = 100.0  # and the only value
    key, value = key.half(), value.half()
    with torch.no_grad():
        peak, out = _peak_logit(attn, lambda: attn(query, key, value, mask))
    assert peak >= 2e4 and peak * math.sqrt(dim // 2) <= torch.finfo(torch.float16).max, peak
    out = out[0].float()
    assert torch.isfinite(out).all()
    for q in range(81):
        qh, qw = divmod(q, 9)
        sees_centre = not (abs(qh - 4) <= 3 and abs(qw - 4) <= 3)
        if sees_centre:
            torch.testing.assert_close(out[q], torch.full((dim,), 100.0), rtol=1e-2, atol=0.0)
        else:
            assert out[q].abs().max() == 0, q
