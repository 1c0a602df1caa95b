"""The calibrate table never hides a number: at 80 columns (a log, a pipe, a small terminal)
every threshold and class name is printed in full, not cut to an ellipsis."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console

from uniad_edge.calibrate.calibrator import Calibration, Row
from uniad_edge.calibrate.policy import Policy
from uniad_edge.calibrate.table import print_calibration
from uniad_edge.metadata import Thresholds


def _rendered(width: int) -> str:
    rows = [
        Row("screw_long_name", 100, 100, 4.629871606, 6.546272141, 5, 0.05, 0.13, 0.102, 0.0, 0.01),
        Row("global", 200, 200, 3.474662661, 3.680197987, 9, 0.045, 0.4, 0.08, 0.0, 0.35),
    ]
    result = Calibration(
        model=Path("export/model.onnx"),
        policy=Policy("target-fpr", 0.05),
        rows=rows,
        before=Thresholds(),
        after=Thresholds(global_=3.474662661),
    )
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    print_calibration(result, console)
    return console.export_text()


def _columns(text: str) -> list[str]:
    """Each body column's cells joined top to bottom, so a value folded over lines reads whole."""
    lines = [line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│")]
    return [re.sub(r"\s", "", "".join(cells)) for cells in zip(*lines, strict=True)]


def test_narrow_console_keeps_every_value() -> None:
    text = _rendered(80)
    assert "…" not in text
    body = "|".join(_columns(text))
    for value in ("4.62987", "6.54627", "3.47466", "3.6802", "screw_long_name", "5(5.0)"):
        assert value in body, value
