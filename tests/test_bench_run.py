"""bench end to end on tiny models: real worker processes, real export, skipped backends.

Checks structure and consistency only; timings on a shared CI machine mean nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from onnx_fixtures import build_model
from typer.testing import CliRunner

from uniad_edge.bench import BenchConfig, BenchReport, run_bench
from uniad_edge.bench.runner import run_worker
from uniad_edge.cli.app import app
from uniad_edge.presets import PRESETS

QUICK = {"warmup": 1, "runs": 3, "frame_wh": (64, 48)}


@pytest.fixture(scope="module")
def report() -> BenchReport:
    """cifar10 geometry with one encoder and one decoder layer, random weights."""
    tiny = PRESETS["cifar10"].replace(name="tiny", num_encoder_layers=1, num_decoder_layers=1)
    config = BenchConfig(preset=tiny, batches=(1, 2), **QUICK)
    return run_bench(config)


def _ok(report: BenchReport, backend: str) -> list:
    return [r for r in report.rows if r.backend == backend and r.ok]


def test_every_requested_row_is_reported(report: BenchReport) -> None:
    keys = [(r.backend, r.precision, r.batch) for r in report.rows]
    assert keys == [(b, "fp32", n) for b in ("torch", "onnxruntime", "tensorrt") for n in (1, 2)]
    assert len(_ok(report, "torch")) == 2 and len(_ok(report, "onnxruntime")) == 2


def test_timings_are_consistent(report: BenchReport) -> None:
    for row in _ok(report, "torch") + _ok(report, "onnxruntime"):
        for lat in (row.latency_ms, row.e2e_latency_ms):
            assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert row.runs == 3 and row.e2e_runs == 3
        assert row.images_per_s == pytest.approx(row.batch * 1e3 / row.latency_ms["p50"])
        assert row.peak_rss_mb > 0 and row.device == "cpu"
        assert row.achieved_gflops_per_s == pytest.approx(row.gflops * row.images_per_s)


def test_speedup_is_against_torch_fp32_at_the_same_batch(report: BenchReport) -> None:
    torch_rows = {r.batch: r for r in _ok(report, "torch")}
    for row in _ok(report, "onnxruntime") + list(torch_rows.values()):
        if row.unstable or torch_rows[row.batch].unstable:  # a busy machine: no ratio given
            assert row.speedup_vs_torch is None
            continue
        expected = row.images_per_s / torch_rows[row.batch].images_per_s
        assert row.speedup_vs_torch == pytest.approx(expected)


def test_tensorrt_is_skipped_with_the_probe_reason(report: BenchReport) -> None:
    from uniad_edge.trt import detect

    if detect().usable:
        pytest.skip("TensorRT is usable here")
    for row in (r for r in report.rows if r.backend == "tensorrt"):
        assert row.status == "skipped" and row.reason == detect().reason
        assert row.latency_ms is None and row.speedup_vs_torch is None


def test_report_names_the_model_and_random_weights(report: BenchReport) -> None:
    assert report.model["preset"] == "tiny" and report.model["gflops"] > 0
    assert report.model["backbone_pretrained"] is False
    assert any("random-init" in n for n in report.notes)


def test_cli_on_an_onnx_without_architecture(tmp_path: Path) -> None:
    """ONNX Runtime runs; torch is skipped (no preset to build); JSON and Markdown are written."""
    model = tmp_path / "fixture.onnx"
    build_model(model)
    out_json, out_md = tmp_path / "out.json", tmp_path / "out.md"
    args = ["bench", "--model", str(model), "--backends", "onnxruntime,torch", "--batch", "1,2"]
    args += ["--warmup", "1", "--runs", "3", "--frame-size", "64x48", "--threads", "1"]
    result = CliRunner().invoke(app, [*args, "--json", str(out_json), "--markdown", str(out_md)])
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text())
    rows = {(r["backend"], r["batch"]): r for r in data["rows"]}
    assert rows[("onnxruntime", 2)]["status"] == "ok"
    assert set(rows[("onnxruntime", 2)]["latency_ms"]) >= {"p50", "p90", "p99"}
    assert (
        rows[("torch", 1)]["status"] == "skipped" and "architecture" in rows[("torch", 1)]["reason"]
    )
    assert rows[("onnxruntime", 1)]["speedup_vs_torch"] is None
    assert data["config"]["threads"] == 1 and data["machine"]["cores"] >= 1
    # "ok, unstable" when a busy machine made the timings contradict themselves (not our call here)
    assert re.search(r"\| onnxruntime \| fp32 \| 2 \| ok(, unstable)? \|", out_md.read_text())


def test_a_failing_row_is_reported_not_raised(tmp_path: Path) -> None:
    job = {"kind": "row", "backend": "onnxruntime", "precision": "fp32", "batch": 1}
    job |= {"artifact": str(tmp_path / "missing.onnx"), "threads": None, "providers": None}
    result = run_worker(job, threads=None)
    assert result["status"] == "failed" and "missing.onnx" in result["reason"]
