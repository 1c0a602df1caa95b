"""Engine build planning, ONNX shape reading, the missing-TensorRT path and the trtexec line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from uniad_edge.errors import UniadError
from uniad_edge.metadata import METADATA_KEY, ModelMetadata
from uniad_edge.trt import builder, environment, features
from uniad_edge.trt.onnx_info import read_onnx_info
from uniad_edge.trt.sidecar import EngineSidecar, GpuInfo, Profile

ORIN = GpuInfo("Orin", (8, 7))


def write_onnx(
    path: Path, batch: int | None, size: tuple[int, int] = (64, 96), precision: str = "fp32"
) -> Path:
    """A tiny graph with the export contract's names: uint8 NHWC image -> map [B,H,W], score [B]."""
    h, w = size
    b: int | str = batch if batch is not None else "batch"
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x"], ["anomaly_map"], axes=[3], keepdims=0),
        helper.make_node("ReduceMax", ["anomaly_map"], ["score"], axes=[1, 2], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [b, h, w, 3])],
        [
            helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, [b, h, w]),
            helper.make_tensor_value_info("score", TensorProto.FLOAT, [b]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    meta = ModelMetadata(
        name="tiny", preset="t", input_size=size, score_reduction="max", batch=batch
    )
    meta.precision = precision
    helper.set_model_props(model, {METADATA_KEY: meta.to_json()})
    onnx.checker.check_model(model)
    onnx.save(model, path)
    path.with_suffix(".json").write_text(json.dumps(meta.to_dict()))
    return path


def test_onnx_info_dynamic_batch(tmp_path: Path) -> None:
    info = read_onnx_info(write_onnx(tmp_path / "dyn.onnx", None))
    assert (info.name, info.input_name, info.batch, info.input_size) == (
        "dyn",
        "image",
        None,
        (64, 96),
    )
    assert info.metadata["preset"] == "t"


def test_onnx_info_static_batch(tmp_path: Path) -> None:
    info = read_onnx_info(write_onnx(tmp_path / "static.onnx", 4))
    assert info.batch == 4


def test_onnx_info_falls_back_to_sidecar_without_onnx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_onnx(tmp_path / "m.onnx", 2, size=(32, 48))
    monkeypatch.setitem(sys.modules, "onnx", None)
    info = read_onnx_info(path)
    assert (info.batch, info.input_size) == (2, (32, 48))
    path.with_suffix(".json").unlink()
    with pytest.raises(UniadError, match="pip install onnx"):
        read_onnx_info(path)


def test_onnx_info_bad_files(tmp_path: Path) -> None:
    with pytest.raises(UniadError, match="not found"):
        read_onnx_info(tmp_path / "missing.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00not an onnx file")
    with pytest.raises(UniadError, match="not a readable ONNX"):
        read_onnx_info(corrupt)


def test_plan_dynamic_onnx_uses_requested_range(tmp_path: Path) -> None:
    path = write_onnx(tmp_path / "model.onnx", None)
    plan = builder.plan_build(
        path,
        read_onnx_info(path),
        tmp_path / "engines",
        "10.3.0",
        ORIN,
        min_batch=1,
        opt_batch=2,
        max_batch=8,
    )
    assert plan.profile == Profile(1, 2, 8)
    assert plan.profile.shapes(*plan.onnx.input_size)[2] == (8, 64, 96, 3)
    assert plan.engine_path == tmp_path / "engines" / "model.orin-sm87.fp16.engine"
    assert plan.timing_cache_path.name == "timing-orin-sm87-trt10.3.0.cache"


def test_plan_static_onnx_pins_profile_to_its_batch(tmp_path: Path) -> None:
    path = write_onnx(tmp_path / "model.onnx", 4)
    plan = builder.plan_build(path, read_onnx_info(path), tmp_path, "10.3.0", ORIN, max_batch=8)
    assert plan.profile == Profile(4, 4, 4)


def test_plan_key_follows_onnx_content(tmp_path: Path) -> None:
    path = write_onnx(tmp_path / "model.onnx", None)
    first = builder.plan_build(path, read_onnx_info(path), tmp_path, "8.6.2", ORIN)
    again = builder.plan_build(path, read_onnx_info(path), tmp_path, "8.6.2", ORIN)
    write_onnx(path, None, size=(64, 64))
    changed = builder.plan_build(path, read_onnx_info(path), tmp_path, "8.6.2", ORIN)
    assert first.key == again.key != changed.key
    other_ws = builder.plan_build(
        path, read_onnx_info(path), tmp_path, "8.6.2", ORIN, workspace_gib=2
    )
    assert other_ws.key != changed.key


def test_plan_rejects_bad_arguments(tmp_path: Path) -> None:
    path = write_onnx(tmp_path / "model.onnx", None)
    info = read_onnx_info(path)
    with pytest.raises(UniadError, match="precision"):
        builder.plan_build(path, info, tmp_path, "8.6.2", ORIN, precision="int8")
    with pytest.raises(UniadError, match="workspace"):
        builder.plan_build(path, info, tmp_path, "8.6.2", ORIN, workspace_gib=0)
    with pytest.raises(UniadError, match="min <= opt <= max"):
        builder.plan_build(path, info, tmp_path, "8.6.2", ORIN, opt_batch=16, max_batch=8)


def test_up_to_date_needs_matching_key_and_engine_bytes(tmp_path: Path) -> None:
    path = write_onnx(tmp_path / "model.onnx", None)
    plan = builder.plan_build(path, read_onnx_info(path), tmp_path / "engines", "8.6.2", ORIN)
    assert not builder.is_up_to_date(plan)
    pins = features.PinReport(requested=2, layers=("a", "b", "c"), missing=())
    builder._save(plan, b"engine-bytes", b"timing", pins=pins, seconds=1.0)
    assert builder.is_up_to_date(plan)
    assert plan.timing_cache_path.read_bytes() == b"timing"
    sidecar = EngineSidecar.read(plan.sidecar_path)
    assert (sidecar.cache_key, sidecar.fp32_layers, sidecar.name) == (plan.key, 3, "model")
    assert (sidecar.fp32_pins_requested, sidecar.fp32_pins_matched) == (2, 2)
    assert sidecar.metadata["preset"] == "t"
    other = builder.plan_build(
        path, read_onnx_info(path), tmp_path / "engines", "8.6.2", ORIN, max_batch=16
    )
    assert other.engine_path == plan.engine_path and not builder.is_up_to_date(other)
    plan.engine_path.write_bytes(b"tampered")
    assert not builder.is_up_to_date(plan)


def test_missing_tensorrt_message_says_how_to_install(no_tensorrt: None) -> None:
    status = environment.detect()
    assert not status.usable
    assert status.reason.startswith("TensorRT is not installed")
    assert 'pip install "uniad-edge[tensorrt]"' in status.reason
    assert "python3-libnvinfer" in status.reason
    assert "\n" not in status.reason


SHARING = "--preview=+profileSharing0806"


def test_build_without_tensorrt_raises_with_trtexec(tmp_path: Path, no_tensorrt: None) -> None:
    path = write_onnx(tmp_path / "model.onnx", None)
    with pytest.raises(environment.TensorRTUnavailableError) as caught:
        builder.build_engine(path, out_dir=tmp_path / "engines", max_batch=4)
    message = str(caught.value)
    assert "TensorRT is not installed" in message and "trtexec" in message
    assert caught.value.trtexec.startswith("TensorRT 8.6: trtexec ")
    assert "; TensorRT 10.x: trtexec " in caught.value.trtexec
    assert "--maxShapes=image:4x64x96x3" in caught.value.trtexec
    assert "uniad-edge adopt-engine" in caught.value.trtexec
    assert "--max-batch 4 --workspace 4" in caught.value.trtexec  # the trtexec line's profile
    assert isinstance(caught.value, UniadError)
    assert not (tmp_path / "engines").exists()


def test_trtexec_fp32_onnx_pins_the_head_with_precision_constraints(tmp_path: Path) -> None:
    """8.6 and 10.x: FP16 flag with the head's layers obeying FP32; 11.x cannot (no --fp16)."""
    path = write_onnx(tmp_path / "model.onnx", None)
    lines = builder.trtexec_lines(path, "engines", max_batch=8, workspace_gib=4)
    assert lines["11.x"] is None
    line = lines["8.6"]
    assert line == f"{lines['10.x']} {SHARING}"  # 8.6: a second worker thread shares profile 0
    assert f"--onnx={path}" in line
    assert "--saveEngine=engines/model.fp16.engine" in line
    assert "--fp16" in line and "--precisionConstraints=obey" in line
    assert "--stronglyTyped" not in line
    assert "--minShapes=image:1x64x96x3" in line
    assert "--optShapes=image:1x64x96x3" in line
    assert "--maxShapes=image:8x64x96x3" in line
    assert "--memPoolSize=workspace:4096" in line
    assert "--timingCacheFile=engines/timing.cache" in line
    summary = builder.equivalent_trtexec(path)
    assert "TensorRT 11.x: re-export with --half first" in summary
    adopt = f"uniad-edge adopt-engine engines/model.fp16.engine --onnx {path} --precision fp16"
    assert adopt in summary


def test_trtexec_half_onnx_strongly_typed_on_10_and_11(tmp_path: Path) -> None:
    path = write_onnx(tmp_path / "half.onnx", None, precision="fp16")
    lines = builder.trtexec_lines(path)
    assert "--stronglyTyped" in lines["10.x"] and "--fp16" not in lines["10.x"]
    assert lines["10.x"] == lines["11.x"]
    assert "--fp16" in lines["8.6"] and "--precisionConstraints=obey" in lines["8.6"]
    assert builder.equivalent_trtexec(path).startswith("TensorRT 8.6: trtexec ")


def test_trtexec_fp32_disables_tf32_and_static_onnx_has_no_shapes(tmp_path: Path) -> None:
    path = write_onnx(tmp_path / "static.onnx", 2)
    lines = builder.trtexec_lines(path, precision="fp32")
    assert lines["10.x"] == lines["11.x"] and lines["8.6"] == f"{lines['10.x']} {SHARING}"
    assert "Shapes" not in lines["8.6"] and "--fp16" not in lines["8.6"]
    assert "--noTF32" in lines["8.6"]
