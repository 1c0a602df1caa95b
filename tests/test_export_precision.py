"""Issue 18 item 4 and issue 21 item 10: one precision vocabulary (`export --precision`, `--half`
its alias) carried to every format step in the options object, `bench` preparing its artifacts
through the export format table, and unsupported opsets refused before any tracing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import run_main
from model_helpers import tiny_checkpoint
from onnx_fixtures import build_model

from uniad_edge.artifacts import ENGINE, ONNX
from uniad_edge.bench.artifacts import ModelSource, Unavailable
from uniad_edge.errors import UniadError
from uniad_edge.export import formats
from uniad_edge.export.formats import FORMATS, ExportFormat, export, format_for
from uniad_edge.export.options import ExportOptions

SEEN: list[ExportOptions] = []


def record_step(result, options):
    """A format step that keeps the options it was handed."""
    SEEN.append(options)
    return formats.FormatOutput("record", result.onnx_path)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth")


def test_precision_and_its_half_alias() -> None:
    assert ExportOptions(half=True).precision == "fp16"
    assert ExportOptions(precision="fp16").is_half and not ExportOptions().is_half
    with pytest.raises(UniadError, match="--precision 'fp8' is not one of fp32, fp16"):
        ExportOptions(precision="fp8")


def test_cli_precision_reaches_every_step_whole(ckpt, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(FORMATS, "record", ExportFormat("record", "test", (record_step,)))
    SEEN.clear()
    out = tmp_path / "out"
    args = ("export", "--ckpt", ckpt, "--out", out, "--format", "record", "--no-verify")
    assert run_main(*args, "--precision", "fp16", "--max-batch", "3") == 0
    (options,) = SEEN
    assert options.precision == "fp16" and options.max_batch == 3 and options.out == out
    assert export(
        ckpt, format="record", out=out, half=True, verify=False
    ).onnx.metadata.precision == ("fp16")
    assert run_main(*args, "--half", "--precision", "fp32") == 2


def test_unsupported_opset_is_refused_before_tracing(ckpt, tmp_path, monkeypatch, capsys) -> None:
    from uniad_edge.export import graph

    def no_tracing(*_args, **_kwargs):
        raise AssertionError("traced although the opset was refused")

    monkeypatch.setattr(graph, "trace_to_onnx", no_tracing)
    out = tmp_path / "out"
    for opset in ("99", "16"):
        assert run_main("export", "--ckpt", ckpt, "--out", out, "--opset", opset) == 2
        err = capsys.readouterr().err
        assert f"--opset {opset} is not supported: choose 17..18" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_bench_prepares_rows_through_the_format_table(tmp_path) -> None:
    assert format_for(ONNX).name == "onnx" and format_for(ENGINE).name == "engine"
    assert format_for(ENGINE).precision_option == "engine_precision"
    onnx = tmp_path / "m.onnx"
    meta = build_model(onnx)
    source = ModelSource("onnx", "ONNX m.onnx", tmp_path, prepared={(ONNX, "fp32"): onnx})
    source.metadata = meta
    assert source.artifact_for(ONNX, "fp32", 1, tmp_path / "engines") == onnx
    from uniad_edge.trt import detect

    if not detect().usable:
        with pytest.raises(Unavailable, match=re.escape(detect().reason[:30])):
            source.artifact_for(ENGINE, "fp16", 1, tmp_path / "engines")
