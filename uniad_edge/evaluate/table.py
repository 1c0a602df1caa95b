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


def print_report(report: EvalReport, console: Console) -> None:
    """Per class: counts, image AUROC for every reduction, pixel AUROC, AU-PRO, and the
    false-alarm and detection rates at the model's stored threshold; mean last."""
    if not report.backbone_pretrained:
        console.print("[bold yellow]WARNING: random-init backbone: numbers say little[/]")
    title = f"{escape(report.checkpoint)} ({escape(report.preset)}), AUROC, AU-PRO and rates in %"
    table = Table(title=title)
    table.add_column("class")
    table.add_column("good/bad", justify="right")
    for reduction in report.image_auroc_by_reduction:
        star = "*" if reduction == report.score_reduction else ""
        table.add_column(f"image {reduction}{star}", justify="right")
    for column in ("pixel", "AU-PRO", "false alarms", "detected"):
        table.add_column(column, justify="right")
    by_reduction = report.image_auroc_by_reduction.values()
    for name in report.classes:
        counts = report.counts[name]
        rates = report.at_threshold.get(name)
        table.add_row(
            escape(name),
            f"{counts['good']}/{counts['anomalous']}",
            *(_cell(values[name]) for values in by_reduction),
            _cell(report.pixel_auroc[name]),
            _cell(report.aupro[name]),
            _rate(rates, "false_alarm_rate"),
            _rate(rates, "detection_rate"),
            end_section=name == report.classes[-1],
        )
    table.add_row(
        "[bold]mean[/]",
        "",
        *(_cell(class_mean(values)) for values in by_reduction),
        _cell(class_mean(report.pixel_auroc)),
        _cell(class_mean(report.aupro)),
        "",
        "",
    )
    console.print(table)
    console.print(
        f"* image score of the preset ({report.score_reduction}); false alarms (good images "
        "called NG) and detected (defective images called NG) at the model's stored threshold"
    )
    for note in report.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
