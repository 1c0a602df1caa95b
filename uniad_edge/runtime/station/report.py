"""The end-of-run summary table of a station (rich), shared by `run`, `serve` and the demo."""

from __future__ import annotations

import numpy as np
from rich.markup import escape
from rich.table import Table

from .stats import StationSummary


def summary_table(summary: StationSummary, title: str = "uniad-edge run") -> Table:
    """Totals, per-camera counts and latencies, sink counts and why the run ended."""
    elapsed = summary.elapsed_s
    table = Table(title=escape(title), show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows: dict[str, object] = {
        "frames scored": summary.frames - summary.errors,
        "OK": summary.ok,
        "NG": summary.ng,
        "ERROR (unreadable frames, backend errors, non-finite scores)": summary.errors,
        "elapsed s": f"{elapsed:.2f}",
        "mean fps": f"{summary.frames / elapsed:.1f}" if elapsed > 0 else "-",
    }
    if summary.unscored:
        rows["UNSCORED (the model has no threshold)"] = summary.unscored
    several = len(summary.cameras) > 1
    for name, stats in summary.cameras.items():
        state = summary.states[name]
        prefix = f"{name}: " if several else ""
        if several:
            rows[f"{prefix}frames (OK/NG/ERROR)"] = (
                f"{stats.frames} ({stats.ok}/{stats.ng}/{stats.errors})"
            )
        rows[f"{prefix}dropped (live)"] = state.dropped
        if state.lost:
            rows[f"{prefix}lost (never delivered)"] = state.lost
        rows[f"{prefix}reconnects"] = state.reconnects
        rows[f"{prefix}state"] = state.status
        for key in stats.latency_ms:
            rows[f"{prefix}mean {key} ms"] = f"{stats.mean(key):.2f}"
        if stats.trigger_ms:
            p50, p99 = np.percentile(stats.trigger_ms, [50, 99])
            rows[f"{prefix}trigger to verdict p50/p99 ms"] = f"{p50:.1f} / {p99:.1f}"
    if summary.api is not None:
        api = summary.api
        rows["API requests (OK/NG/ERROR)"] = f"{api.frames} ({api.ok}/{api.ng}/{api.errors})"
    rows |= {k: v for k, v in summary.sinks.items() if v or "not" in k}
    if summary.thresholds:
        rows["thresholds"] = summary.thresholds
    rows["ended by"] = summary.ended_by
    for key, value in rows.items():
        table.add_row(escape(key), escape(str(value)))
    return table
