"""Issue 29: TensorRT builds the INT8 (Q/DQ) graph with each release's flags, against the fakes.

8.6 has no strongly typed network: explicit quantization needs the INT8 flag (with FP16 for the
float layers between the pairs and the distance head pinned to FP32); 10.x and 11.x build it
strongly typed, no precision flag. No release uses a calibrator: the scales are in the graph.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import onnx
import pytest
from cli_helpers import run_main
from model_helpers import TINY, tiny_checkpoint
from test_trt_versions import built, install
from trt_fakes import RELEASES

from uniad_edge.artifacts import sidecar_path
from uniad_edge.errors import UniadError
from uniad_edge.export import export_onnx
from uniad_edge.export.graph import head_nodes
from uniad_edge.export.int8 import Quantizer, qdq_counts
from uniad_edge.export.int8_groups import QUANTIZED_OPS
from uniad_edge.export.verify import sample_frames
from uniad_edge.metadata import GIB, METADATA_KEY
from uniad_edge.trt import adopt_engine, builder, parse_gpu
from uniad_edge.trt.onnx_info import read_onnx_info
from uniad_edge.trt.sidecar import EngineSidecar


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny model's float32 graph and its Q/DQ graph (every Conv/MatMul quantized)."""
    root = tmp_path_factory.mktemp("trt-int8")
    ckpt = tiny_checkpoint(root / "tiny.pth")
    fp32 = export_onnx(ckpt, root, "tiny", verify=False, preset=TINY, batch=1).onnx_path
    graph = onnx.load(str(fp32))
    head = [n.name for n in head_nodes(graph)]
    quantizer = Quantizer(graph, sample_frames(TINY, 4), 1, head)
    try:
        nodes = [n.name for n in graph.graph.node if n.op_type in QUANTIZED_OPS]
        qdq = quantizer.quantize(nodes)
    finally:
        quantizer.close()
    meta = json.loads(graph.metadata_props[0].value)
    meta["precision"] = "int8"
    del qdq.metadata_props[:]
    qdq.metadata_props.add(key=METADATA_KEY, value=json.dumps(meta))
    path = root / "tiny-int8.onnx"
    onnx.save(qdq, path)
    return fp32, path


def test_the_qdq_graph_is_symmetric_int8_and_every_op_is_parsed_by_86(graphs) -> None:
    from uniad_edge.trt.parser_ops import PARSER_OPS_86

    qdq = onnx.load(str(graphs[1]))
    counts = qdq_counts(qdq)
    assert counts["QuantizeLinear"] > 0 and counts["DequantizeLinear"] >= counts["QuantizeLinear"]
    assert {n.op_type for n in qdq.graph.node} <= PARSER_OPS_86
    assert all(d.domain in ("", "ai.onnx") for d in qdq.opset_import)
    assert read_onnx_info(graphs[1]).precision == "int8"
    producers = {o: n.op_type for n in qdq.graph.node for o in n.output}
    head = {name for n in head_nodes(qdq) for name in n.input}
    assert "DequantizeLinear" not in {producers.get(name) for name in head}  # float features


@pytest.mark.parametrize("release", RELEASES)
def test_int8_engine_from_the_qdq_graph(release, graphs, tmp_path, monkeypatch) -> None:
    install(monkeypatch, release)
    record = built(builder.build_engine(graphs[1], tmp_path, precision="int8"))
    if release == "8.6":
        assert not record["strongly_typed"]
        assert {"INT8", "FP16", "OBEY_PRECISION_CONSTRAINTS"} <= set(record["flags"])
        assert set(read_onnx_info(graphs[1]).fp32_layers) <= set(record["pinned"])
    else:
        assert record["strongly_typed"] and not {"INT8", "FP16"} & set(record["flags"])
        assert record["pinned"] == []


@pytest.mark.parametrize("release", ["8.6", "10.3"])
def test_the_fake_refuses_qdq_layers_without_the_int8_flag(release, graphs, tmp_path, monkeypatch):
    """What the real builder does with explicit quantization and no INT8 flag (weakly typed):
    a build of the Q/DQ graph as FP16 fails, so the builder never asks for one."""
    install(monkeypatch, release)
    with pytest.raises(UniadError, match="export --precision int8"):
        builder.build_engine(graphs[1], tmp_path, precision="fp16")
    with pytest.raises(UniadError, match="export --precision int8"):
        builder.build_engine(graphs[0], tmp_path, precision="int8")


def test_trtexec_lines_per_release_for_the_int8_graph(graphs) -> None:
    lines = builder.trtexec_lines(graphs[1], precision="int8")
    assert "--int8" in lines["8.6"] and "--fp16" in lines["8.6"]
    assert "--precisionConstraints=obey" in lines["8.6"]
    for release in ("10.x", "11.x"):
        assert "--stronglyTyped" in lines[release] and "--int8" not in lines[release]
    assert all(lines[r].split()[0] == "trtexec" for r in lines)
    assert builder.trtexec_lines(graphs[0], precision="int8") == dict.fromkeys(lines)


def test_quantized_graph_scores_finite_on_onnx_runtime(graphs) -> None:
    from uniad_edge.export.int8 import scores

    frames = sample_frames(TINY, 3)
    got = scores(graphs[1].read_bytes(), frames, 1)
    ref = scores(graphs[0].read_bytes(), frames, 1)
    assert got.shape == ref.shape == (3,) and np.isfinite(got).all()


@pytest.mark.parametrize("release", RELEASES)
def test_the_printed_adopt_line_records_what_the_builder_would(
    release, graphs, tmp_path, monkeypatch
) -> None:
    """An INT8 engine built by the printed trtexec line and registered by the printed
    `adopt-engine` line gets the sidecar `build_engine` writes: precision int8, typed as that
    release's trtexec line builds it, the same profile, workspace and cache key (an adopted
    INT8 engine once read fp16, weakly typed, and the default batch range)."""
    install(monkeypatch, release)
    built_engine = builder.build_engine(graphs[1], tmp_path / "built", precision="int8")
    reference = EngineSidecar.read(sidecar_path(built_engine))
    out_dir = tmp_path / "engines"
    line = builder.equivalent_trtexec(graphs[1], out_dir, "int8", workspace_gib=2)
    adopt = shlex.split(line.rsplit("`", 2)[1])
    assert adopt[:2] == ["uniad-edge", "adopt-engine"]
    engine = Path(adopt[2])
    engine.parent.mkdir()
    engine.write_bytes(built_engine.read_bytes())  # what trtexec --saveEngine leaves
    assert run_main(*adopt[1:]) == 0
    adopted = EngineSidecar.read(sidecar_path(engine))
    assert adopted.precision == "int8"
    assert adopted.strongly_typed == reference.strongly_typed == (release != "8.6")
    assert adopted.profile == reference.profile
    assert adopted.workspace_bytes == 2 * GIB
    assert adopted.cache_key != reference.cache_key  # built with 2 GiB, not the default
    again = builder.build_engine(graphs[1], tmp_path / "again", precision="int8", workspace_gib=2)
    assert adopted.cache_key == EngineSidecar.read(sidecar_path(again)).cache_key


def test_adopting_the_qdq_graph_as_fp16_is_refused(graphs, tmp_path, no_tensorrt) -> None:
    engine = tmp_path / "tiny.fp16.engine"
    engine.write_bytes(b"engine")
    with pytest.raises(UniadError, match="builds no fp16 engine"):
        adopt_engine(engine, graphs[1], "10.3.0", parse_gpu("Orin:8.7"), precision="fp16")
    assert not sidecar_path(engine).exists()
