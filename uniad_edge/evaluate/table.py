"""The terminal table of `uniad-edge eval`."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .evaluator import EvalReport, class_mean


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _rate(rates: dict | None, key: str) -> str:
    return _cell(None if rates is None else rates.get(key))


def _rates_table(report: EvalReport) -> Table:
    """At the model's stored thresholds: good images called NG, defective images called NG."""
    table = Table(title="at the model's stored thresholds, in %")
    for column in ("class", "threshold", "false alarms (good NG)", "detected (defective NG)"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name in report.classes:
        rates = report.at_threshold.get(name) or {}
        threshold = rates.get("threshold")
        table.add_row(
            escape(name),
            "-" if threshold is None else f"{threshold:.6g}",
            _rate(rates, "false_alarm_rate"),
            _rate(rates, "detection_rate"),
        )
    return table


def print_report(report: EvalReport, console: Console) -> None:
    """Per class: counts, image AUROC for every reduction, pixel AUROC, AU-PRO (mean last); then
    the false-alarm and detection rates at the model's stored thresholds."""
    if not report.backbone_pretrained:
        console.print("[bold yellow]WARNING: random-init backbone: numbers say little[/]")
    table = Table(
        title=f"{escape(report.checkpoint)} ({escape(report.preset)}), AUROC and AU-PRO in %"
    )
    table.add_column("class")
    table.add_column("good/bad", justify="right")
    for reduction in report.image_auroc_by_reduction:
        star = "*" if reduction == report.score_reduction else ""
        table.add_column(f"image {reduction}{star}", justify="right")
    for column in ("pixel", "AU-PRO"):
        table.add_column(column, justify="right")
    by_reduction = report.image_auroc_by_reduction.values()
    for name in report.classes:
        counts = report.counts[name]
        table.add_row(
            escape(name),
            f"{counts['good']}/{counts['anomalous']}",
            *(_cell(values[name]) for values in by_reduction),
            _cell(report.pixel_auroc[name]),
            _cell(report.aupro[name]),
            end_section=name == report.classes[-1],
        )
    table.add_row(
        "[bold]mean[/]",
        "",
        *(_cell(class_mean(values)) for values in by_reduction),
        _cell(class_mean(report.pixel_auroc)),
        _cell(class_mean(report.aupro)),
    )
    console.print(table)
    console.print(f"* image score of the preset ({report.score_reduction})")
    console.print(_rates_table(report))
    for note in report.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
