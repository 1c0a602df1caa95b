"""The demo report's benchmark table says when a row was measured on a busy machine: a
'16.90x vs torch' over an unstable PyTorch row must not be printed at all."""

from __future__ import annotations

from types import SimpleNamespace

from uniad_edge.bench.report import BenchRow
from uniad_edge.bench.runner import _derive
from uniad_edge.demo.steps import _bench_table


def test_unstable_rows_are_labelled_in_the_report() -> None:
    torch_row = BenchRow(
        "torch", "fp32", 1, latency_ms={"p50": 1363.9, "p99": 6034.3}, unstable=True
    )
    torch_row.notes.append("unstable (end-to-end p50 below engine-only p50)")
    ort_row = BenchRow("onnxruntime", "fp32", 1, latency_ms={"p50": 80.7})
    _derive([torch_row, ort_row], None, SimpleNamespace(roofline=False))
    table = _bench_table(SimpleNamespace(rows=[torch_row, ort_row]))
    status = table.headers.index("status")
    speedup = table.headers.index("vs torch")
    assert table.rows[0][status] == "ok, unstable"
    assert table.rows[1][status] == "ok"
    # Its baseline is the unstable torch row: no ratio at all (issue 28 item 15), not '16.90x'.
    assert table.rows[1][speedup] == "n/a (unstable)"
