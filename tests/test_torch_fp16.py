"""Issue 17: PyTorch's float16 (autocast, the torch backend's fp16) keeps the reconstruction and
the head in float32 by construction, so a large input projection cannot overflow there."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from model_helpers import TINY

from uniad_edge.errors import UniadError
from uniad_edge.model import FusedUniAD, build_model, save_checkpoint
from uniad_edge.model.torch_backend import TorchBackend
from uniad_edge.parity import HALF_LIMITS


def test_autocast_runs_the_reconstruction_in_float32_even_with_a_huge_projection() -> None:
    torch.manual_seed(0)
    model = build_model(TINY, pretrained=False).eval()
    with torch.no_grad():  # a projection no float16 product can hold: 1e4 x features
        model.reconstruction.input_proj.weight.mul_(1e4)
    seen: list[torch.dtype] = []
    model.reconstruction.register_forward_hook(lambda _m, args, out: seen.append(out.dtype))
    frames = torch.randint(0, 256, (2, *TINY.input_size, 3), dtype=torch.uint8)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.float16):
        maps, scores = FusedUniAD(model).eval()(frames)
    assert seen == [torch.float32]
    assert maps.dtype == torch.float32 and torch.isfinite(maps).all()
    assert torch.isfinite(scores).all()


def test_a_frame_whose_backbone_overflows_float16_is_scored_in_float32() -> None:
    """Autocast has no per-layer range contract: a frame whose backbone activations leave
    float16's range gets its features again in float32 instead of a NaN map."""
    torch.manual_seed(0)
    model = build_model(TINY, pretrained=False).eval()
    first = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        first.weight.mul_(1e6)  # the stem's output alone is beyond 65504 on a bright frame
    frames = torch.randint(0, 256, (2, *TINY.input_size, 3), dtype=torch.uint8)
    frames[1] = 0  # a black frame stays in range: only frame 0 is recomputed
    fused = FusedUniAD(model).eval()
    with torch.inference_mode():
        reference, _ = fused(frames)
        with torch.autocast("cpu", dtype=torch.float16):
            assert not torch.isfinite(model.features(fused.preprocess(frames[:1]))).all()
            maps, scores = fused(frames)
    assert torch.isfinite(maps).all() and torch.isfinite(scores).all()
    assert torch.allclose(maps[0], reference[0], rtol=1e-4, atol=1e-4)


def test_the_torch_backend_runs_fp16_after_measuring_it(tmp_path) -> None:
    """A model within float16's range loads in fp16 with its stress-frame drift on record; a
    deeper one is refused. Float16 rounding compounds layer by layer: through stages 1-2 of a
    random-init B4 autocast drifts 1.8e-3 (map relative L2), through stages 1-4 1.4e-2 on the
    saturated frames, past the 1e-2 an fp16 export must also meet."""
    shallow = dataclasses.replace(TINY, stages=(1, 2))
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "m.pth", build_model(shallow, pretrained=False).eval(), {})
    with TorchBackend(ckpt, precision="fp16") as backend:
        drift = backend.fp16_drift
        frames = np.random.default_rng(0).integers(0, 256, (2, *shallow.input_size, 3), np.uint8)
        maps, scores = backend.infer(frames)
    assert drift is not None and drift.finite and not drift.failures(HALF_LIMITS)
    assert np.isfinite(maps).all() and np.isfinite(scores).all()
    with TorchBackend(ckpt) as backend:
        assert backend.fp16_drift is None  # fp32 measures nothing
    torch.manual_seed(0)
    deep = save_checkpoint(tmp_path / "d.pth", build_model(TINY, pretrained=False).eval(), {})
    with pytest.raises(UniadError, match="drifts from float32 on the stress frames"):
        TorchBackend(deep, precision="fp16")
