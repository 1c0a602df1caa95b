"""Issue 13: `export --format triton` writes a Triton model repository whose config parses with
Triton's own model_config protobuf (from tritonclient) and names the right shapes, dtypes,
batching and metadata; versions are never overwritten without --force."""

from __future__ import annotations

import json

import onnx
import pytest
from cli_helpers import run_main
from model_helpers import TINY, tiny_checkpoint
from onnx_fixtures import build_model

from uniad_edge.errors import UniadError
from uniad_edge.export import pipeline
from uniad_edge.export.triton_repo import TritonOptions, export_triton, pbtxt_string
from uniad_edge.fileio import sha256_file
from uniad_edge.metadata import METADATA_KEY, ModelMetadata, Thresholds
from uniad_edge.trt.sidecar import Profile

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="tritonclient[grpc] not installed"
)
text_format = pytest.importorskip("google.protobuf.text_format")

ODD_CLASSES = {"wood": 30.0, 'screw "M4"': 45.0, "Schraube-ä\\b": 50.0}


def parse_config(path) -> object:
    """config.pbtxt through Triton's protobuf; unknown fields or bad escapes raise."""
    return text_format.Parse(path.read_text(encoding="utf-8"), model_config_pb2.ModelConfig())


def served_metadata(config) -> ModelMetadata:
    return ModelMetadata.from_json(config.parameters[METADATA_KEY].string_value)


@pytest.fixture
def fixture_onnx(tmp_path):
    path = tmp_path / "fixture.onnx"
    meta = build_model(path, input_size=(24, 40), per_class=ODD_CLASSES, sidecar=False)
    return path, meta


def test_onnxruntime_repository_parses_with_tritons_protobuf(fixture_onnx, tmp_path) -> None:
    source, meta = fixture_onnx
    options = TritonOptions(ort_trt_fp16=True, instance_count=2, preferred_batch_sizes=(2, 8))
    repo = export_triton(source, tmp_path / "repo", options)
    config = parse_config(repo.config_path)
    assert repo.config_path == tmp_path / "repo" / "uniad" / "config.pbtxt"
    assert config.name == "uniad" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 8
    (image,) = config.input
    assert image.name == "image" and list(image.dims) == [24, 40, 3]
    assert image.data_type == model_config_pb2.TYPE_UINT8
    outputs = {o.name: o for o in config.output}
    assert list(outputs["anomaly_map"].dims) == [24, 40]
    assert list(outputs["score"].dims) == [1] and list(outputs["score"].reshape.shape) == []
    assert {o.data_type for o in outputs.values()} == {model_config_pb2.TYPE_FP32}
    assert list(config.dynamic_batching.preferred_batch_size) == [2, 8]
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    (group,) = config.instance_group
    assert group.count == 2 and group.kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    # The metadata a client reads equals the model's own, odd class names included.
    served = served_metadata(config)
    assert served.to_dict() == meta.to_dict()
    assert served.thresholds.for_class('screw "M4"') == 45.0
    assert config.parameters["class_names"].string_value == ",".join(meta.class_names)
    assert json.loads(config.parameters["versions"].string_value) == meta.versions
    model_file = repo.version_dir / "model.onnx"
    assert repo.version_dir == tmp_path / "repo" / "uniad" / "1"
    assert sha256_file(model_file) == sha256_file(source)
    assert sorted(p.name for p in repo.version_dir.parent.iterdir()) == ["1", "config.pbtxt"]


def test_python_backend_and_engine_repositories(fixture_onnx, tmp_path) -> None:
    source, meta = fixture_onnx
    repo = export_triton(source, tmp_path / "py", TritonOptions(backend="python", name="insp"))
    config = parse_config(repo.config_path)
    assert config.backend == "python" and not config.platform
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert sorted(p.name for p in repo.version_dir.iterdir()) == ["model.onnx", "model.py"]
    compile(repo.version_dir.joinpath("model.py").read_text(), "model.py", "exec")

    engine = tmp_path / "m.engine"
    engine.write_bytes(b"serialized engine bytes")
    engine.with_suffix(".json").write_text(meta.to_json())
    repo = export_triton(engine, tmp_path / "trt", TritonOptions(version=3))
    config = parse_config(repo.config_path)
    assert config.platform == "tensorrt_plan"
    assert repo.model_path == tmp_path / "trt" / "uniad" / "3" / "model.plan"
    assert repo.model_path.read_bytes() == b"serialized engine bytes"
    assert served_metadata(config).class_names == meta.class_names

    profile = Profile(1, 2, 4).to_dict()  # as the engine builder writes it
    engine.with_suffix(".json").write_text(
        json.dumps({**meta.to_dict(), "engine": {"profile": profile}})
    )
    with pytest.raises(UniadError, match=r"built for batches 1\.\.4 .* --max-batch 4"):
        export_triton(engine, tmp_path / "trt4")
    repo = export_triton(
        engine, tmp_path / "trt4", TritonOptions(max_batch_size=4, preferred_batch_sizes=(4,))
    )
    assert parse_config(repo.config_path).max_batch_size == 4


def test_existing_version_needs_force(fixture_onnx, tmp_path) -> None:
    source, _ = fixture_onnx
    out = tmp_path / "repo"
    first = export_triton(source, out)
    stamp = first.model_path.stat().st_mtime_ns
    with pytest.raises(UniadError, match="already exists; pass --force"):
        export_triton(source, out)
    assert first.model_path.stat().st_mtime_ns == stamp
    export_triton(source, out, TritonOptions(version=2))
    build_model(source, input_size=(16, 16), sidecar=False)
    replaced = export_triton(source, out, TritonOptions(force=True))
    assert parse_config(replaced.config_path).input[0].dims == [16, 16, 3]
    assert sorted(p.name for p in (out / "uniad").iterdir()) == ["1", "2", "config.pbtxt"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (TritonOptions(backend="tensorrt"), "needs an engine"),
        (TritonOptions(backend="tflite"), "is not one of"),
        (TritonOptions(preferred_batch_sizes=(16,)), "must lie in 1..8"),
        (TritonOptions(backend="python", ort_trt_fp16=True), "onnxruntime backend only"),
        (TritonOptions(instance_kind="tpu"), "gpu, cpu"),
    ],
)
def test_bad_options_are_one_line_errors(fixture_onnx, tmp_path, options, message) -> None:
    with pytest.raises(UniadError, match=message) as caught:
        export_triton(fixture_onnx[0], tmp_path / "repo", options)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "repo" / "uniad" / "1").exists()


def test_static_batch_and_missing_metadata_are_refused(tmp_path) -> None:
    static = tmp_path / "static.onnx"
    build_model(static, batch=2)
    with pytest.raises(UniadError, match="static batch of 2"):
        export_triton(static, tmp_path / "repo")
    bare = tmp_path / "bare.onnx"
    build_model(bare, embed_metadata=False, sidecar=False)
    with pytest.raises(UniadError, match="no uniad-edge metadata"):
        export_triton(bare, tmp_path / "repo")
    assert not (tmp_path / "repo" / "uniad" / "1").exists()


def test_pbtxt_string_round_trips_through_protobuf() -> None:
    text = 'a "quoted" \\ back\nslash ä ✓ \t end'
    message = text_format.Parse(f"name: {pbtxt_string(text)}", model_config_pb2.ModelConfig())
    assert message.name == text


def test_cli_export_format_triton_from_a_checkpoint(tmp_path, monkeypatch, capsys) -> None:
    """The CLI path: checkpoint -> fused ONNX -> repository carrying the checkpoint's thresholds,
    the ONNX moved in (nothing loose left in --out). Tracing is replaced by the fixture graph of
    the same geometry (test_export_onnx covers the real trace; test_triton_serving serves a real
    export)."""
    thresholds = {"global": 2.5, "per_class": {"wood": 2.0}, "rule": "1.1 x p99 of held-out"}
    ckpt = tiny_checkpoint(tmp_path / "tiny.pth", thresholds)
    graph = tmp_path / "graph.onnx"
    build_model(graph, input_size=TINY.input_size, embed_metadata=False, sidecar=False)
    monkeypatch.setattr(pipeline, "trace_to_onnx", lambda *args: onnx.load(str(graph)))
    monkeypatch.setattr(pipeline, "graph_problems", lambda *args: [])  # no LayerNorm in it
    out = tmp_path / "repo"
    args = ["export", "--ckpt", ckpt, "--format", "triton", "--out", out, "--no-verify"]
    extra = ["--name", "insp", "--version", "3", "--preferred-batch", "2,4", "--max-batch", "4"]
    assert run_main(*args, *extra, "--instances", "2", "--max-queue-delay-us", "100") == 0
    config = parse_config(out / "insp" / "config.pbtxt")
    served = served_metadata(config)
    assert served.preset == "tiny-64" and served.class_names == ["wood", "pill"]
    assert served.thresholds.to_dict() == Thresholds.from_dict(thresholds).to_dict()
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 4
    assert list(config.dynamic_batching.preferred_batch_size) == [2, 4]
    assert config.dynamic_batching.max_queue_delay_microseconds == 100
    assert config.instance_group[0].count == 2
    assert sorted(p.name for p in out.iterdir()) == ["insp"]  # the ONNX moved in, no staging
    model_file = out / "insp" / "3" / "model.onnx"
    assert (
        served_metadata(config).to_dict()
        == ModelMetadata.from_json(
            {p.key: p.value for p in onnx.load(str(model_file)).metadata_props}[METADATA_KEY]
        ).to_dict()
    )
    assert "triton model insp v3" in capsys.readouterr().out

    assert run_main(*args, *extra) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert run_main(*args, "--batch", "2") == 2
    assert "dynamic batch" in capsys.readouterr().err
    assert run_main(*args, "--preferred-batch", "4,x") == 2
    assert "--preferred-batch takes comma-separated integers" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["insp"]  # failures leave nothing loose


def test_cli_tensorrt_backend_without_tensorrt_is_one_line(
    tmp_path, monkeypatch, capsys, no_tensorrt
) -> None:
    ckpt = tiny_checkpoint(tmp_path / "tiny.pth")
    graph = tmp_path / "graph.onnx"
    build_model(graph, input_size=TINY.input_size, embed_metadata=False, sidecar=False)
    monkeypatch.setattr(pipeline, "trace_to_onnx", lambda *args: onnx.load(str(graph)))
    monkeypatch.setattr(pipeline, "graph_problems", lambda *args: [])
    out = tmp_path / "repo"
    args = ["export", "--ckpt", ckpt, "--format", "triton", "--out", out, "--no-verify"]
    assert run_main(*args, "--triton-backend", "tensorrt", "--engine-dir", tmp_path / "e") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "TensorRT" in err
    assert not any(out.iterdir())  # neither a repository nor the loose ONNX
