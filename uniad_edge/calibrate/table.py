"""The terminal table of `uniad-edge calibrate`."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from ..metadata import describe_provenance
from ..redact import redact_url
from .calibrator import Calibration


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def print_calibration(result: Calibration, console: Console) -> None:
    """Per class and global: threshold before/after, measured rates and the false-alarm bound.

    Cells fold instead of ending in an ellipsis on a narrow terminal; when stdout is not a
    terminal (a log, a pipe) the table is printed at its full width, so no number is split."""
    title = "rollback" if result.policy is None else escape(result.policy.describe())
    table = Table(title=f"calibrate {escape(redact_url(str(result.model)))}: {title} (rates in %)")
    for column in ("class", "good", "defective", "threshold", "previous"):
        table.add_column(column, justify="left" if column == "class" else "right", overflow="fold")
    for column in ("false alarms", f"FA {result.confidence:.0%} bound", "detected"):
        table.add_column(column, justify="right", overflow="fold")
    table.add_column("before: FA / detected", justify="right", overflow="fold")
    for row in result.rows:
        fa = "-"
        if row.false_alarms is not None:
            fa = f"{row.false_alarms} ({_pct(row.false_alarm_rate)})"
        table.add_row(
            escape(row.name),
            str(row.good),
            str(row.defective),
            _num(row.threshold),
            _num(row.previous),
            fa,
            _pct(row.fpr_bound),
            _pct(row.detection_rate),
            f"{_pct(row.previous_false_alarm_rate)} / {_pct(row.previous_detection_rate)}",
            end_section=row.name == result.rows[-1].name,
        )
    if not console.is_terminal:
        wide = console.options.update_width(10_000)
        console.width = max(console.width, Measurement.get(console, wide, table).maximum)
    console.print(table)
    console.print(
        "false alarms: good images called NG; detected: defective images called NG; the bound "
        "is the Clopper-Pearson upper confidence bound on the false-alarm rate"
    )
    for row in result.rows:
        if row.warning:
            console.print(f"[yellow]warning:[/] {escape(row.name)}: {escape(row.warning)}")
    for note in result.notes:
        console.print(f"[yellow]warning:[/] {escape(note)}")
    if result.dry_run:
        console.print(f"thresholds in use: {escape(describe_provenance(result.before))}")
        console.print("[yellow]dry run: nothing written[/]")
        return
    console.print(f"thresholds: {escape(describe_provenance(result.after))}")
    console.print(f"wrote {escape(', '.join(str(p) for p in result.written))}")
