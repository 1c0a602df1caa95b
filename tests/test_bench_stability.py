"""Issue 14 bug 8: bench rows that contradict themselves under load are flagged, with a hint.

Rule (uniad_edge.bench.stats.instability): a row is unstable when its end-to-end p50 is below
its engine-only p50 (impossible on a quiet machine: end-to-end includes the engine call) or when
a p99 exceeds 5x its p50 (stalls from other work, not the model). Synthetic rows, no timing.
"""

from __future__ import annotations

import pytest

from uniad_edge.bench import BenchReport, BenchRow
from uniad_edge.bench.report import render_markdown
from uniad_edge.bench.runner import _fill
from uniad_edge.bench.stats import QUIET_HINT, TAIL_RATIO


def _lat(p50: float, p99: float) -> dict[str, float]:
    return {"p50": p50, "p90": (p50 + p99) / 2, "p99": p99, "mean": p50, "min": p50, "max": p99}


def _row(engine: dict[str, float], e2e: dict[str, float] | None) -> BenchRow:
    row = BenchRow("onnxruntime", "fp32", 1)
    _fill(row, {"status": "ok", "device": "cpu", "latency_ms": engine, "e2e_latency_ms": e2e}, None)
    return row


@pytest.mark.parametrize(
    ("engine", "e2e", "why"),
    [
        (_lat(30.0, 40.0), _lat(25.0, 35.0), "below engine-only p50"),
        (_lat(10.0, 200.0), _lat(12.0, 20.0), "20x its p50"),
        (_lat(10.0, 12.0), _lat(12.0, 61.0), "5x its p50"),
    ],
)
def test_contradictory_rows_are_flagged_with_how_to_measure_quietly(engine, e2e, why) -> None:
    row = _row(engine, e2e)
    assert row.unstable
    (note,) = [n for n in row.notes if n.startswith("unstable")]
    assert why in note and QUIET_HINT in note
    report = BenchReport(machine={}, model={}, config={}, rows=[row])
    assert "ok, unstable" in render_markdown(report) and why in render_markdown(report)


@pytest.mark.parametrize(
    ("engine", "e2e"),
    [
        (_lat(30.0, 40.0), _lat(36.0, 50.0)),
        (_lat(10.0, TAIL_RATIO * 10.0), None),
        (_lat(10.0, 12.0), _lat(10.0, 14.0)),
        (_lat(30.0, 40.0), _lat(28.0, 38.0)),  # maps for NG frames only: engine within noise
    ],
)
def test_consistent_rows_are_not_flagged(engine, e2e) -> None:
    row = _row(engine, e2e)
    assert not row.unstable and not any(n.startswith("unstable") for n in row.notes)
