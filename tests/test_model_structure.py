"""Issue 2: the model is faithful to the spec and clean to export."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from uniad_edge.cli.app import app
from uniad_edge.model import build_model
from uniad_edge.model.head import DistanceHead
from uniad_edge.model.transformer import Attention, neighbour_mask
from uniad_edge.presets import PRESETS


@pytest.mark.parametrize(
    ("preset", "feature_map", "tokens"),
    [
        ("mvtec-512", [32, 32, 720], 1024),
        ("cifar10", [8, 8, 720], 64),
        ("mvtec-224", [14, 14, 272], 196),
    ],
)
def test_info_json_reports_geometry(preset: str, feature_map: list[int], tokens: int) -> None:
    result = CliRunner().invoke(app, ["info", "--preset", preset, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["feature_map"] == feature_map
    assert data["tokens"] == tokens
    assert data["input_size"] == list(PRESETS[preset].input_size)
    assert data["params"]["total"] > 0 and data["gflops"] > 0
    assert data["backbone_pretrained"] is False


def test_info_text_names_feature_map() -> None:
    result = CliRunner().invoke(app, ["info", "--preset", "mvtec-512"])
    assert result.exit_code == 0
    assert "32x32x720" in result.output and "1024" in result.output


@pytest.mark.parametrize(("h", "w", "k"), [(14, 14, 7), (8, 8, 7), (5, 9, 3)])
def test_mask_blocks_exactly_the_clipped_window(h: int, w: int, k: int) -> None:
    mask = neighbour_mask((h, w), (k, k))
    assert mask.dtype == torch.bool
    for q in range(h * w):
        qh, qw = divmod(q, w)
        for key in range(h * w):
            kh_, kw_ = divmod(key, w)
            inside = abs(kh_ - qh) <= k // 2 and abs(kw_ - qw) <= k // 2
            assert bool(mask[q, key]) == inside, (q, key)


def test_masked_keys_get_exactly_zero_weight_in_half_precision() -> None:
    attn = Attention(16, 2, 0.0).eval()
    with torch.no_grad():
        attn.out_proj.weight.copy_(torch.eye(16))
        attn.out_proj.bias.zero_()
        attn.in_proj_weight[32:].copy_(torch.eye(16))  # value projection = identity
        attn.in_proj_bias.zero_()
    attn.half()
    mask = neighbour_mask((9, 9), (7, 7))
    x = torch.randn(1, 81, 16).half()
    value = torch.zeros(1, 81, 16).half()
    value[0, 40] = 100.0  # only the centre token carries a value
    out = attn(x, x, value, mask)[0]
    assert torch.isfinite(out).all()
    for q in range(81):
        qh, qw = divmod(q, 9)
        sees_centre = not (abs(qh - 4) <= 3 and abs(qw - 4) <= 3)
        assert bool(out[q].abs().sum() > 0) == sees_centre, q


def test_position_embedding_reaches_every_attention_layer(small_preset) -> None:
    model = build_model(small_preset, pretrained=False).eval()
    recon = model.reconstruction
    calls: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for name, module in recon.named_modules():
        if isinstance(module, Attention):
            module.register_forward_hook(
                lambda m, args, out, name=name: calls.append((name, *args[:3]))
            )
    with torch.no_grad():
        recon(torch.randn(2, small_preset.channels, *small_preset.feature_size))
    pos = recon.pos_embed()
    layers = small_preset.num_encoder_layers + 2 * small_preset.num_decoder_layers
    assert len(calls) == layers
    for name, query, key, value in calls:
        torch.testing.assert_close(key - value, pos.expand_as(key), msg=name)
        if "decoder" in name and name.endswith("self_attn"):
            layer = recon.get_submodule(name.rsplit(".", 1)[0])
            expected = layer.learned_embed.weight + pos
            torch.testing.assert_close(query, expected.expand_as(query), msg=name)
        elif "encoder" in name:
            torch.testing.assert_close(query - value, pos.expand_as(query), msg=name)


def test_each_decoder_layer_has_its_own_query(small_preset) -> None:
    model = build_model(small_preset, pretrained=False).train()
    layers = model.reconstruction.transformer.decoder.layers
    queries = [layer.learned_embed.weight for layer in layers]
    assert len({q.data_ptr() for q in queries}) == len(layers)
    assert all(q.shape == (small_preset.tokens, small_preset.hidden_dim) for q in queries)
    feats = torch.randn(2, small_preset.channels, *small_preset.feature_size)
    model.reconstruction(feats).pow(2).mean().backward()
    assert all(q.grad is not None and q.grad.abs().sum() > 0 for q in queries)


def test_backbone_is_frozen_trimmed_and_stays_in_eval(small_preset) -> None:
    model = build_model(small_preset, pretrained=False)
    model.train()
    assert not model.backbone.training
    assert all(not m.training for m in model.backbone.modules())
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert len(model.backbone._blocks) == max(small_preset.taps) + 1
    assert not hasattr(model.backbone, "_conv_head") and not hasattr(model.backbone, "_fc")
    assert model.reconstruction.training


def test_feature_jitter_only_in_training(small_preset) -> None:
    recon = build_model(small_preset, pretrained=False).reconstruction
    feats = torch.randn(1, small_preset.channels, *small_preset.feature_size)
    recon.eval()
    with torch.no_grad():
        assert torch.equal(recon(feats), recon(feats))
    recon.train()
    recon.transformer.requires_grad_(False)
    for module in recon.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    for attn in recon.modules():
        if isinstance(attn, Attention):
            attn.dropout = 0.0
    with torch.no_grad():
        assert not torch.equal(recon(feats), recon(feats))


def test_half_precision_runs_on_cpu_and_head_stays_float32() -> None:
    model = build_model(PRESETS["cifar10"], pretrained=False).eval().half()
    with torch.no_grad():
        amap, score = model(torch.randn(2, 3, 32, 32).half())
    assert amap.dtype == torch.float32 and score.dtype == torch.float32
    assert torch.isfinite(amap).all() and torch.isfinite(score).all()


def test_distance_head_does_not_overflow_half_inputs() -> None:
    """|diff| = 10 over 720 channels sums to 72000 > 65504: float16 math would give inf."""
    head = DistanceHead((16, 16), "max", 4)
    feats = torch.zeros(1, 720, 4, 4, dtype=torch.float16)
    rec = torch.full_like(feats, 10.0)
    assert torch.isinf((rec - feats).pow(2).sum(dim=1)).any()  # the hazard is real
    amap, score = head(feats, rec)
    assert amap.dtype == torch.float32
    torch.testing.assert_close(amap, torch.full((1, 16, 16), 72000.0**0.5))
    torch.testing.assert_close(score, torch.tensor([72000.0**0.5]))


def test_score_reductions() -> None:
    from uniad_edge.model.head import reduce_score

    amap = torch.zeros(2, 32, 32)
    amap[0, 0:16, 0:16] = 1.0
    amap[1, 5, 5] = 256.0
    torch.testing.assert_close(reduce_score(amap, "max", 16), torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(reduce_score(amap, "mean", 16), torch.tensor([0.25, 0.25]))
    assert reduce_score(amap, "std", 16).shape == (2,)


def test_forward_has_symbolic_batch_under_torch_export(small_preset) -> None:
    from uniad_edge.model import FusedUniAD

    model = FusedUniAD(build_model(small_preset, pretrained=False).eval())
    frames = torch.randint(0, 256, (2, *small_preset.input_size, 3), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model, (frames,), dynamic_shapes={"images": {0: batch}})
    other = torch.randint(0, 256, (3, *small_preset.input_size, 3), dtype=torch.uint8)
    with torch.no_grad():
        expected = model(other)
    got = program.module()(other)
    torch.testing.assert_close(got[0], expected[0])
    torch.testing.assert_close(got[1], expected[1])
