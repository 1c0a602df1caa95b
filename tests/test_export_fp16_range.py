"""Issue 17 items 1-2: float16 that cannot overflow, by construction and by a range contract.

Models whose unscaled attention logits exceed float16's 65504 (tests/fp16_models.py) export
with `--half`; the half graph is finite and within 1e-2 (map relative L2) of the float32 graph
on every stress frame; PyTorch's float16 (autocast, the torch backend's fp16) stays finite and
is refused at load where it drifts; the
nodes kept float32 are in the metadata and `info` shows them. Before the change, these exports
refused (drift) or returned NaN maps on saturated frames.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from cli_helpers import run_main
from fp16_models import overflow_checkpoint

from uniad_edge.errors import UniadError
from uniad_edge.export import export_onnx
from uniad_edge.export.fp16_range import FLOAT16_MAX, magnitude, range_contract
from uniad_edge.export.half import to_mixed_precision
from uniad_edge.export.verify import ort_session, run_ort
from uniad_edge.model import FusedUniAD, autocast_check, load_checkpoint
from uniad_edge.model.torch_backend import TorchBackend
from uniad_edge.parity import HALF_LIMITS, compare
from uniad_edge.stress import stress_frames

PRESETS = ("mvtec-224", "mvtec-512")


@pytest.fixture(scope="module", params=PRESETS)
def exported(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    ckpt = overflow_checkpoint(root / "x60.pth", request.param)
    result = export_onnx(ckpt, root / "export", "x60", half=True, verify_batches=(2,))
    return request.param, ckpt, result


def test_half_export_is_finite_and_close_on_every_stress_frame(exported) -> None:
    preset, ckpt, result = exported
    fp32 = export_onnx(ckpt, result.onnx_path.parent, "x60-fp32", verify=False).onnx_path
    frames = stress_frames(load_checkpoint(ckpt).preset.input_size)
    reference = ort_session(fp32.read_bytes())
    half = ort_session(result.onnx_path.read_bytes())
    for name, frame in frames.items():
        drift = compare(run_ort(reference, frame[None]), run_ort(half, frame[None]))
        assert drift.finite, (preset, name)
        assert drift.map_rel_l2 <= 1e-2, (preset, name, drift.describe())
    assert result.metadata.precision == "fp16"
    assert result.metadata.fp32_nodes, "the attention of this model must be kept float32"
    sidecar = json.loads(result.sidecar_path.read_text())
    assert sidecar["fp32_nodes"] == result.metadata.fp32_nodes
    assert sidecar["verification"]["fp16_range"]["pinned"] == result.metadata.fp32_nodes


def test_unscaled_logits_of_these_models_overflow_float16(exported) -> None:
    """The premise: q·kᵀ before the 1/sqrt(d) scale is beyond 65504 on some stress frame."""
    preset, ckpt, _ = exported
    model = load_checkpoint(ckpt).model.eval()
    frames = stress_frames(model.preset.input_size)
    peaks: list[float] = []

    def hook(module, args, out) -> None:
        q, k = module._heads(args[0], 0), module._heads(args[1], 1)
        peaks.append(float((q @ k.transpose(-2, -1)).abs().max()))

    attn = model.reconstruction.transformer.encoder.layers[0].self_attn
    handle = attn.register_forward_hook(hook)
    try:
        with torch.inference_mode():
            FusedUniAD(model).eval()(torch.from_numpy(np.stack(list(frames.values()))[:8]))
    finally:
        handle.remove()
    assert max(peaks) > FLOAT16_MAX, (preset, max(peaks))


@pytest.mark.parametrize("exported", ["mvtec-224"], indirect=True)
def test_torch_fp16_is_finite_and_refused_where_it_drifts(exported, monkeypatch) -> None:
    """The torch backend's fp16 (autocast) measures itself on the stress frames at load (the
    measurement here is independent of the backend) and is refused, in one line giving that
    drift, beyond the limits: shown at 224 with a limit just below this model's drift (1.1e-2,
    about the fp16 limit itself); the 512 Kaiming model's drift (0.17 relative L2) is measured by
    benchmarks/fp16_drift.py (the check at 512 takes minutes on a CPU).
    """
    preset, ckpt, _ = exported
    fused = FusedUniAD(load_checkpoint(ckpt).model.eval()).eval()
    frames = torch.from_numpy(np.stack(list(stress_frames(fused.model.preset.input_size).values())))
    with torch.inference_mode():
        reference = fused(frames)
        with torch.autocast("cpu", dtype=torch.float16):
            half = fused(frames)
    drift = compare(*(tuple(t.float().numpy() for t in pair) for pair in (reference, half)))
    assert drift.finite, preset  # frames whose backbone overflows are recomputed in float32
    below = replace(HALF_LIMITS, map_rel_l2=drift.map_rel_l2 / 2)
    monkeypatch.setattr(autocast_check, "HALF_LIMITS", below)
    with pytest.raises(UniadError) as refused:
        TorchBackend(ckpt, precision="fp16")
    message = str(refused.value)
    assert str(ckpt) in message and "autocast" in message and "--precision fp32" in message
    assert "worst frame: " in message and "\n" not in message
    assert f"map relative L2 {drift.map_rel_l2:.2e} > " in message  # the drift measured here


def test_info_shows_the_float32_nodes(exported, capsys) -> None:
    _, _, result = exported
    assert run_main("info", result.onnx_path, "--json") == 0
    assert json.loads(capsys.readouterr().out)["fp32_nodes"] == result.metadata.fp32_nodes
    assert run_main("info", result.onnx_path) == 0
    table = capsys.readouterr().out
    assert "fp32_nodes" in table and result.metadata.fp32_nodes[0] in table


def test_the_export_summary_says_when_the_half_graph_is_mostly_float32(exported) -> None:
    """These models need most nodes float32 to meet the drift limits (measured: 430 at 224, 580
    at 512): the export's summary says so, not just a count, since such an engine is hardly
    faster than float32; a graph with a few pinned nodes gets no warning."""
    from rich.console import Console

    from uniad_edge.cli.export import _kept_float32, _summary
    from uniad_edge.export.formats import Exported

    _, _, result = exported
    assert len(result.metadata.fp32_nodes) * 2 > result.float32_nodes
    console = Console(width=400, record=True)
    console.print(_summary(Exported(result), 1.0))
    text = console.export_text()
    assert f"{len(result.metadata.fp32_nodes)} of the {result.float32_nodes} float32" in text
    assert "mostly in float32" in text
    assert "mostly" not in _kept_float32(10, 400)


def test_converter_keeps_large_values_between_float32_nodes_float32() -> None:
    """Two pinned nodes in a row: the converter's float16 round trip between them would turn
    1e6 into inf; the range contract finds them and the graph stays exact."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT, name="/pre/Cast"),
        helper.make_node("Mul", ["x", "big"], ["y"], name="/blow/Mul"),
        helper.make_node("Div", ["y", "big"], ["z"], name="/shrink/Div"),
        helper.make_node("ReduceMean", ["z"], ["m"], keepdims=0, name="/mean/ReduceMean"),
        helper.make_node("Identity", ["z"], ["anomaly_map"], name="/distance_head/Identity"),
        helper.make_node("Identity", ["m"], ["score"], name="/distance_head/Score"),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 2, 2, 3])],
        [helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, [1, 2, 2, 3]),
         helper.make_tensor_value_info("score", TensorProto.FLOAT, [])],
        [helper.make_tensor("big", TensorProto.FLOAT, [], [1e4])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    frames = np.full((1, 2, 2, 3), 200, np.uint8)
    contract = range_contract(model, frames, batch=1)
    assert contract.pinned == ["/blow/Mul", "/shrink/Div"]
    half = to_mixed_precision(model, contract.pinned)
    out = run_ort(ort_session(half.SerializeToString()), frames)
    np.testing.assert_allclose(out[0], 200.0, rtol=1e-6)


def test_magnitude_counts_nan_as_inf_and_ignores_the_mask_sentinel() -> None:
    lowest = np.finfo(np.float32).min
    assert magnitude(np.array([1.0, lowest, -3.0], np.float32)) == 3.0
    assert magnitude(np.array([1.0, np.nan], np.float32)) == np.inf
    assert magnitude(np.array([np.inf], np.float32)) == np.inf
