"""bench without running models: statistics, config parsing, derived columns, rendering."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console

from uniad_edge.bench import BenchConfig, BenchReport, BenchRow, rich_table
from uniad_edge.bench.config import parse_batches, parse_frame, split_list
from uniad_edge.bench.machine import _min_equals_max, describe_machine
from uniad_edge.bench.runner import _derive, _fill
from uniad_edge.bench.stats import images_per_second, summarize
from uniad_edge.errors import UniadError


def test_percentiles_are_ordered_for_any_sample() -> None:
    rng = np.random.default_rng(1)
    for size in (1, 2, 3, 17):
        s = summarize(rng.exponential(0.01, size).tolist())
        assert s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
    assert summarize([0.002, 0.004])["mean"] == pytest.approx(3.0)
    with pytest.raises(ValueError):
        summarize([])


def test_images_per_second_is_batch_over_median_latency() -> None:
    assert images_per_second({"p50": 250.0, "mean": 900.0}, 8) == pytest.approx(32.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"preset": "cifar10", "model": "x.onnx"},
        {"preset": "cifar10", "backends": ("openvino",)},
        {"preset": "cifar10", "precisions": ("int4",)},
        {"preset": "cifar10", "batches": (0,)},
        {"preset": "cifar10", "runs": 0},
        {"preset": "cifar10", "threads": 0},
        {"preset": "cifar10", "seconds": 0.0},
    ],
)
def test_config_rejects_bad_options(kwargs: dict) -> None:
    with pytest.raises(UniadError):
        BenchConfig(**kwargs)


def test_cli_list_parsing() -> None:
    assert split_list(" onnxruntime, torch ,") == ["onnxruntime", "torch"]
    assert parse_batches("1,8") == (1, 8)
    assert parse_frame("1920x1080") == (1920, 1080)
    for bad in ("1080p", "x", "12x"):
        with pytest.raises(UniadError):
            parse_frame(bad)
    with pytest.raises(UniadError):
        parse_batches("one")


def _row(backend: str, precision: str, batch: int, mean_ms: float) -> BenchRow:
    row = BenchRow(backend, precision, batch)
    lat = {"p50": mean_ms, "p90": mean_ms, "p99": mean_ms, "mean": mean_ms}
    _fill(row, {"status": "ok", "device": "cpu", "latency_ms": lat, "e2e_latency_ms": lat}, 2.0)
    return row


def test_speedup_and_fraction_of_peak_are_derived_per_batch() -> None:
    rows = [_row("torch", "fp32", 1, 100.0), _row("torch", "fp32", 2, 100.0)]
    rows += [_row("onnxruntime", "fp32", 1, 25.0), _row("onnxruntime", "fp32", 2, 100.0)]
    peaks = [{"library": "numpy", "device": "cpu", "dtype": "fp32", "gflops_per_s": 80.0}]
    config = BenchConfig(preset="cifar10", roofline=True)
    assert _derive(rows, peaks, config) == []
    assert [r.speedup_vs_torch for r in rows] == pytest.approx([1.0, 1.0, 4.0, 1.0])
    assert rows[2].e2e_speedup_vs_torch == pytest.approx(4.0)
    assert rows[2].images_per_s == pytest.approx(40.0)
    assert rows[2].achieved_gflops_per_s == pytest.approx(80.0)
    assert rows[2].fraction_of_peak == pytest.approx(1.0)


def test_speedup_is_null_with_a_note_when_torch_did_not_run() -> None:
    torch_row = BenchRow("torch", "fp32", 1, status="skipped", reason="PyTorch is not installed")
    rows = [torch_row, _row("onnxruntime", "fp32", 1, 10.0)]
    notes = _derive(rows, None, BenchConfig(preset="cifar10"))
    assert rows[1].speedup_vs_torch is None
    assert any("PyTorch is not installed" in n for n in notes)
    assert any("--roofline" in n for n in notes)


def _report() -> BenchReport:
    reason = 'TensorRT is not installed; pip install "uniad-edge[tensorrt]"'
    rows = [
        _row("onnxruntime", "fp32", 1, 10.0),
        BenchRow("tensorrt", "fp32", 1, status="skipped", reason=reason),
        BenchRow("tensorrt", "fp32", 8, status="skipped", reason=reason),
    ]
    model = {"source": "preset tiny", "input_size": [32, 32], "gflops": 2.0}
    return BenchReport(describe_machine(), model, BenchConfig(preset="cifar10").to_dict(), rows)


def test_markdown_has_the_table_and_each_reason_once(tmp_path) -> None:
    report = _report()
    text = report.write_markdown(tmp_path / "bench.md").read_text()
    assert "| backend | precision | batch | status |" in text
    assert "| onnxruntime | fp32 | 1 | ok | cpu | 10.0 |" in text
    assert text.count("TensorRT is not installed") == 1
    assert "- tensorrt: skipped: TensorRT is not installed" in text


def test_json_round_trips_with_the_documented_keys(tmp_path) -> None:
    data = json.loads(_report().write_json(tmp_path / "bench.json").read_text())
    assert {"machine", "rows", "model", "config"} <= set(data)
    row = data["rows"][0]
    for key in ("backend", "precision", "batch", "status", "latency_ms", "images_per_s"):
        assert key in row
    assert "speedup_vs_torch" in row
    assert data["rows"][1]["status"] == "skipped" and data["rows"][1]["reason"]


def test_rich_table_keeps_brackets_in_reasons() -> None:
    console = Console(width=400, record=True)
    console.print(rich_table(_report()))
    assert "uniad-edge[tensorrt]" in console.export_text()


def test_machine_description_and_jetson_clock_parsing() -> None:
    machine = describe_machine()
    assert machine["cores"] >= 1 and machine["cpu"]
    assert "onnxruntime" in machine["versions"]
    assert _min_equals_max("cpu0: Online=1 Governor=x MinFreq=2201600 MaxFreq=2201600 Cur=1")
    assert not _min_equals_max("cpu0: Online=1 MinFreq=729600 MaxFreq=2201600 CurrentFreq=1")
