"""`uniad_edge.export.export`: formats from one table (a new format is one entry plus its step),
every option's default in `ExportOptions`, and the GFLOPs the export records in the metadata,
recounted here from the ONNX graph's convolutions and matrix products."""

from __future__ import annotations

import json
import math
import shutil

import onnx
import pytest
from cli_helpers import run_main
from model_helpers import TINY, tiny_checkpoint
from onnx import numpy_helper, shape_inference

from uniad_edge.bench.artifacts import resolve as bench_resolve
from uniad_edge.errors import UniadError
from uniad_edge.export import FORMATS, export, normalize_format
from uniad_edge.export.formats import ExportFormat, FormatOutput
from uniad_edge.model.summary import gflops


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth")


@pytest.fixture(scope="module")
def onnx_export(ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    return export(ckpt, format="onnx", out=out, batch=1, verify=False)


def copy_step(result, options) -> FormatOutput:
    """A stand-in for a new format's step (say a model repository): copy the ONNX somewhere."""
    target = options.out / "repository" / "model.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(result.onnx_path, target)
    return FormatOutput("repository", target.parent)


def _graph_gflops(path) -> float:
    """2 x multiply-adds of every Conv, MatMul and Gemm, from the shapes ONNX infers."""
    model = shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*graph.value_info, *graph.input, *graph.output]
    }
    shapes.update({t.name: list(numpy_helper.to_array(t).shape) for t in graph.initializer})
    flops = 0
    for node in graph.node:
        if node.op_type == "Conv":
            out = shapes[node.output[0]]
            _, cin_per_group, *kernel = shapes[node.input[1]]
            flops += 2 * math.prod(out) * cin_per_group * math.prod(kernel)
        elif node.op_type in ("MatMul", "Gemm"):
            k = shapes[node.input[0]][-1]
            flops += 2 * math.prod(shapes[node.output[0]]) * k
    assert flops > 0
    return flops / 1e9


def test_export_records_gflops_that_the_graph_confirms(onnx_export, tmp_path, monkeypatch):
    result = onnx_export.onnx
    assert onnx_export.artifacts == []
    recorded = result.metadata.gflops
    assert recorded == round(gflops(TINY), 3) and recorded > 0
    assert json.loads(result.sidecar_path.read_text())["gflops"] == recorded
    assert _graph_gflops(result.onnx_path) == pytest.approx(recorded, rel=0.01)
    # bench without PyTorch reads the number from the export instead of counting it
    monkeypatch.setattr("uniad_edge.bench.artifacts.torch_missing", lambda: "no torch")
    assert bench_resolve(result.onnx_path, None, tmp_path).gflops == recorded


def test_formats_and_aliases_come_from_one_table():
    assert set(FORMATS) == {"auto", "onnx", "engine", "triton"}
    assert [normalize_format(v) for v in ("TRT", "tensorrt", "engine", "Onnx")] == [
        "engine",
        "engine",
        "engine",
        "onnx",
    ]
    with pytest.raises(UniadError, match="--format 'tflite' is not one of auto, onnx, engine"):
        normalize_format("tflite")


def test_bad_options_are_one_line_errors(ckpt, tmp_path):
    with pytest.raises(UniadError, match="unexpected keyword argument 'halve'"):
        export(ckpt, format="onnx", out=tmp_path, halve=True)
    with pytest.raises(UniadError, match="--dynamic and --batch exclude each other"):
        export(ckpt, format="onnx", out=tmp_path, dynamic=True, batch=2)
    assert list(tmp_path.iterdir()) == []


def test_auto_without_tensorrt_keeps_the_onnx_and_says_why(ckpt, tmp_path, no_tensorrt):
    exported = export(ckpt, out=tmp_path, engine_dir=tmp_path / "engines", verify=False)
    assert exported.onnx.onnx_path.is_file()
    (engine,) = exported.artifacts
    assert engine.kind == "engine" and engine.path is None
    assert "trtexec" in engine.command and engine.note


def test_a_new_format_is_one_table_entry(ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(FORMATS, "repo", ExportFormat("repo", "a model repository", (copy_step,)))
    out = tmp_path / "out"
    code = run_main("export", "--ckpt", ckpt, "--out", out, "--format", "repo", "--no-verify")
    assert code == 0
    copied = out / "repository" / "model.onnx"
    assert copied.read_bytes() == (out / "tiny.onnx").read_bytes()
    assert "repository" in capsys.readouterr().out
