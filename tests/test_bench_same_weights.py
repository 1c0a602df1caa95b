"""Issue 28 item 15: the demo's headline was 31.89x over a PyTorch row that ran random weights
(not the exported model's function) on subnormal floats, and that the bench itself had called
unstable. Given an export, PyTorch rows run the checkpoint its provenance names; both backends
flush denormals (or the row says it did not); no ratio is derived from an unstable row."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from model_helpers import tiny_checkpoint

from uniad_edge.bench import BenchReport, BenchRow
from uniad_edge.bench.artifacts import resolve
from uniad_edge.bench.report import WITHHELD, render_markdown, speedup_cell
from uniad_edge.bench.runner import _derive, _fill
from uniad_edge.demo.steps import _bench_table
from uniad_edge.export import export_onnx
from uniad_edge.model.torch_backend import TorchBackend
from uniad_edge.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("same")
    ckpt = tiny_checkpoint(folder / "tiny.pth")
    return ckpt, export_onnx(ckpt, folder / "export", verify=False).onnx_path


def test_pytorch_rows_of_an_export_run_its_checkpoint(exported, tmp_path) -> None:
    ckpt, onnx = exported
    source = resolve(onnx, None, tmp_path)
    assert source.checkpoint_for_torch() == ckpt.resolve()
    frames = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    flushing = torch.set_flush_denormal(False)  # what the process had: restored below
    try:
        reference = TorchBackend(source.checkpoint_for_torch())
        assert reference.flushes_denormals is True
        assert (torch.tensor([1e-39]) * 0.5).item() == 0.0  # subnormals are flushed
        with OnnxRuntimeBackend(onnx) as ort_backend:
            assert ort_backend.flushes_denormals is True
            ort_maps, ort_scores = ort_backend.infer(frames)
        torch_maps, torch_scores = reference.infer(frames)
    finally:
        torch.set_flush_denormal(flushing)
    np.testing.assert_allclose(torch_scores, ort_scores, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(torch_maps, ort_maps, rtol=1e-3, atol=1e-3)


def test_a_missing_or_changed_checkpoint_means_random_weights_and_says_why(
    exported, tmp_path
) -> None:
    ckpt, onnx = exported
    copy = tmp_path / onnx.name
    copy.write_bytes(onnx.read_bytes())
    copy.with_suffix(".json").write_bytes(onnx.with_suffix(".json").read_bytes())
    original = ckpt.read_bytes()
    try:
        ckpt.write_bytes(original + b"\0")
        source = resolve(copy, None, tmp_path)
        assert source.checkpoint_for_torch() is None
        assert "has changed since the export" in source.torch_weights_note
        ckpt.unlink()
        source = resolve(copy, None, tmp_path)
        assert source.checkpoint_for_torch() is None
        assert "is not on this machine" in source.torch_weights_note
    finally:
        ckpt.write_bytes(original)


def _measured(backend: str, p50: float, e2e_p50: float) -> BenchRow:
    row = BenchRow(backend, "fp32", 1)
    lat = {"p50": p50, "p90": p50, "p99": p50, "mean": p50, "min": p50, "max": p50}
    e2e = {**lat, "p50": e2e_p50, "p90": e2e_p50, "p99": e2e_p50}
    result = {"status": "ok", "device": "cpu", "latency_ms": lat, "e2e_latency_ms": e2e}
    _fill(row, {**result, "denormals_flushed": True}, None)
    return row


def test_no_ratio_is_derived_from_an_unstable_row() -> None:
    """The demo's case: torch engine-only p50 1531 ms against its own end-to-end 95 ms."""
    torch_row, ort_row = _measured("torch", 1531.0, 95.0), _measured("onnxruntime", 48.0, 60.0)
    assert torch_row.unstable and not ort_row.unstable
    _derive([torch_row, ort_row], None, SimpleNamespace(roofline=False))
    assert ort_row.speedup_vs_torch is None and ort_row.e2e_speedup_vs_torch is None
    assert any(n.startswith(WITHHELD) for n in ort_row.notes)
    assert speedup_cell(ort_row) == "n/a (unstable)"
    report = BenchReport(machine={}, model={}, config={}, rows=[torch_row, ort_row])
    assert "31.89x" not in render_markdown(report) and "n/a (unstable)" in render_markdown(report)
    table = _bench_table(report)
    speedups = [row[table.headers.index("vs torch")] for row in table.rows]
    assert speedups == ["n/a (unstable)", "n/a (unstable)"]

    stable = _measured("torch", 100.0, 110.0)
    ort_row = _measured("onnxruntime", 50.0, 60.0)
    _derive([stable, ort_row], None, SimpleNamespace(roofline=False))
    assert ort_row.speedup_vs_torch == pytest.approx(2.0) and speedup_cell(ort_row) == "2.00x"


def test_a_row_that_could_not_flush_denormals_says_so() -> None:
    row = BenchRow("torch", "fp32", 1)
    lat = {"p50": 10.0, "p90": 10.0, "p99": 10.0, "mean": 10.0, "min": 10.0, "max": 10.0}
    _fill(row, {"status": "ok", "latency_ms": lat, "denormals_flushed": False}, None)
    assert any("denormals NOT flushed" in n for n in row.notes)
