"""`info --help` names every artifact `info` reads: engines too (through their sidecar)."""

from __future__ import annotations

from typer.testing import CliRunner

from uniad_edge.cli import app


def test_help_names_engines() -> None:
    result = CliRunner().invoke(app, ["info", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert ".onnx" in result.output and ".engine" in result.output
