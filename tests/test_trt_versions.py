"""The builder and runtime against fake TensorRT 8.6, 10.3, 10.16 and 11.4 modules.

Each fake exposes exactly the names its release's bindings have (tests/data/trt_surfaces, read
from the real wheels), so a call the release lacks fails here as it would on a device. Builds
parse the real exported graph of a small random-init model, fp32 and --half.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
import tomllib
from cli_helpers import run_main
from onnx_fixtures import export_real_graphs
from trt_fakes import RELEASES, FakeCuda, FakeMemory, fake_tensorrt, load_surface

from uniad_edge.artifacts import sidecar_path
from uniad_edge.errors import UniadError
from uniad_edge.export import pipeline
from uniad_edge.runtime.backends import tensorrt_backend
from uniad_edge.runtime.backends.tensorrt_backend import TensorRTBackend
from uniad_edge.trt import adopt_engine, builder, environment, features, find_engines, parse_gpu
from uniad_edge.trt.environment import TensorRTUnavailableError
from uniad_edge.trt.onnx_info import read_onnx_info
from uniad_edge.trt.sidecar import EngineSidecar

TEN_PLUS = ("10.3", "10.16", "11.4")


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return export_real_graphs(tmp_path_factory.mktemp("real"))


def install(monkeypatch: pytest.MonkeyPatch, release: str, version: str | None = None) -> object:
    """Make `import tensorrt` give the fake of `release`, with a fake CUDA and an Orin GPU."""
    memory = FakeMemory()
    trt = fake_tensorrt(release, memory)
    if version:
        trt.__version__ = version
    cuda = FakeCuda(memory)
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", trt)
    for module in (environment, builder, tensorrt_backend):
        monkeypatch.setattr(module, "cuda_api", lambda: cuda)
    environment.detect.cache_clear()
    return trt


@pytest.fixture(autouse=True)
def _forget_probe():
    yield
    environment.detect.cache_clear()


def built(engine: Path) -> dict:
    """What the fake builder recorded: flags, typing, pinned layers, profiles."""
    return json.loads(engine.read_bytes())


def test_surfaces_record_the_api_changes_the_issue_names() -> None:
    """The facts the builder relies on, as read from the real bindings."""
    s = {r: load_surface(r) for r in RELEASES}
    assert "STRONGLY_TYPED" not in s["8.6"]["NetworkDefinitionCreationFlag"]
    assert all("STRONGLY_TYPED" in s[r]["NetworkDefinitionCreationFlag"] for r in TEN_PLUS)
    assert "EXPLICIT_BATCH" not in s["11.4"]["NetworkDefinitionCreationFlag"]
    assert "FP16" not in s["11.4"]["BuilderFlag"] and "FP16" in s["10.16"]["BuilderFlag"]
    assert "OBEY_PRECISION_CONSTRAINTS" not in s["11.4"]["BuilderFlag"]
    assert {"precision", "set_output_type"}.isdisjoint(s["11.4"]["ILayer"])
    assert {"precision", "set_output_type"} <= set(s["8.6"]["ILayer"])
    assert all("TF32" in s[r]["BuilderFlag"] for r in RELEASES)
    for r in RELEASES:
        assert "set_optimization_profile_async" in s[r]["IExecutionContext"]
        assert s[r]["source"]["wheel_sha256"]


@pytest.mark.parametrize("release", RELEASES)
def test_fp16_from_the_half_graph(release, graphs, tmp_path, monkeypatch) -> None:
    """10.x/11.x: strongly typed, no precision flags; 8.6: FP16 flag, head pinned, OBEY."""
    install(monkeypatch, release)
    engine = builder.build_engine(graphs[1], tmp_path, precision="fp16", max_batch=4)
    record = built(engine)
    sidecar = EngineSidecar.read(sidecar_path(engine))
    head = read_onnx_info(graphs[1]).fp32_layers
    if release == "8.6":
        assert not record["strongly_typed"]
        assert {"FP16", "OBEY_PRECISION_CONSTRAINTS"} <= set(record["flags"])
        assert set(head) <= set(record["pinned"])
    else:
        assert record["strongly_typed"] and sidecar.strongly_typed
        assert {"FP16", "OBEY_PRECISION_CONSTRAINTS"}.isdisjoint(record["flags"])
        assert record["pinned"] == []
    assert record["profiles"] == [{"image": [[1, 224, 224, 3], [1, 224, 224, 3], [4, 224, 224, 3]]}]


@pytest.mark.parametrize("release", RELEASES)
def test_fp16_from_the_fp32_graph(release, graphs, tmp_path, monkeypatch) -> None:
    """8.6/10.x pin the head under the FP16 flag; 11.x has no FP16 flag: one line, --half."""
    install(monkeypatch, release)
    if release == "11.4":
        with pytest.raises(TensorRTUnavailableError) as caught:
            builder.build_engine(graphs[0], tmp_path, precision="fp16")
        message = str(caught.value)
        assert "11.4.0.106" in message and "uniad-edge export --half" in message
        assert "\n" not in message and not list(tmp_path.iterdir())
        return
    engine = builder.build_engine(graphs[0], tmp_path, precision="fp16")
    record = built(engine)
    assert not record["strongly_typed"] and "FP16" in record["flags"]
    head = read_onnx_info(graphs[0]).fp32_layers
    assert head and set(head) <= set(record["pinned"])
    sidecar = EngineSidecar.read(sidecar_path(engine))
    assert sidecar.fp32_layers == len(record["pinned"])
    assert sidecar.fp32_pins_matched == sidecar.fp32_pins_requested == len(head)


@pytest.mark.parametrize("release", RELEASES)
def test_fp32_build_disables_tf32(release, graphs, tmp_path, monkeypatch) -> None:
    install(monkeypatch, release)
    record = built(builder.build_engine(graphs[0], tmp_path, precision="fp32"))
    assert "TF32" not in record["flags"] and "FP16" not in record["flags"]
    assert record["strongly_typed"] is (release == "11.4")
    with pytest.raises(UniadError, match="without --half"):
        builder.build_engine(graphs[1], tmp_path, precision="fp32")


def test_opset_above_the_parser_is_refused_on_86(graphs, tmp_path, monkeypatch) -> None:
    model = onnx.load(str(graphs[0]))
    model.opset_import[0].version = 18
    newer = tmp_path / "opset18.onnx"
    onnx.save(model, newer)
    install(monkeypatch, "8.6", "8.6.2")
    with pytest.raises(TensorRTUnavailableError) as caught:
        builder.build_engine(newer, tmp_path / "engines", precision="fp32")
    assert "8.6.2 parses ONNX opset 17 at most" in str(caught.value)
    assert "--opset 17" in str(caught.value)
    install(monkeypatch, "10.3")
    assert builder.build_engine(newer, tmp_path / "engines", precision="fp32").is_file()


@pytest.mark.parametrize("version", ["8.5.3", "9.2.0", "12.0.0"])
def test_tensorrt_we_cannot_drive_is_one_line(version, monkeypatch) -> None:
    install(monkeypatch, "10.16", version)
    status = environment.detect()
    assert not status.usable
    assert version in status.reason and "8.6, 10.x or 11.x" in status.reason
    assert "\n" not in status.reason


def test_release_without_a_required_name_cannot_be_driven(monkeypatch) -> None:
    trt = install(monkeypatch, "10.3")
    del trt.ICudaEngine.num_io_tensors
    assert "lacks ICudaEngine.num_io_tensors" in features.unsupported_reason(trt)


@pytest.mark.parametrize("release", ["8.6", "11.4"])
def test_second_worker_thread_selects_profile_0(release, graphs, tmp_path, monkeypatch) -> None:
    """Without set_optimization_profile_async a second context has no profile: execute fails."""
    install(monkeypatch, release)
    engine = builder.build_engine(graphs[1], tmp_path, precision="fp16", max_batch=2)
    frames = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    want = frames.astype(np.float32).mean(-1) / 255.0
    errors: list[BaseException] = []
    with TensorRTBackend(engine) as backend:
        maps, scores = backend.infer(frames)

        def work() -> None:
            try:
                other_maps, _ = backend.infer(frames)
                np.testing.assert_allclose(other_maps, want, rtol=1e-6)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        contexts = [state.context for state in backend._states]
    assert not errors, errors
    np.testing.assert_allclose(maps, want, rtol=1e-6)
    np.testing.assert_allclose(scores, want.max((1, 2)), rtol=1e-6)
    assert len(contexts) == 2
    if release == "8.6":
        assert built(engine)["preview"] == ["PROFILE_SHARING_0806"]


def test_86_second_context_on_profile_0_needs_profile_sharing(graphs, tmp_path, monkeypatch):
    """NvInfer.h 8.6.1: contexts share a profile only with PROFILE_SHARING_0806 (default off);
    an engine built without it fails its second worker thread."""
    install(monkeypatch, "8.6")
    monkeypatch.setattr(features, "enable_profile_sharing", lambda trt, config: False)
    engine = builder.build_engine(graphs[1], tmp_path, precision="fp16", max_batch=2)
    assert built(engine)["preview"] == []
    frames = np.zeros((1, 224, 224, 3), np.uint8)
    errors: list[BaseException] = []
    with TensorRTBackend(engine) as backend:
        backend.infer(frames)
        thread = threading.Thread(target=lambda: _record(errors, backend.infer, frames))
        thread.start()
        thread.join()
    assert errors and "optimization profile 0" in str(errors[0])


def _record(errors: list[BaseException], call, *args) -> None:
    try:
        call(*args)
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def test_86_trtexec_line_shares_profiles_and_pins_range_nodes(graphs, tmp_path) -> None:
    """The 8.6 line carries --preview=+profileSharing0806 (10.x needs none) and pins the nodes
    the export's range contract listed, besides the head."""
    model = onnx.load(str(graphs[0]))
    meta = json.loads(model.metadata_props[0].value)
    pinned = [n.name for n in model.graph.node if n.op_type == "Softmax"][:1]
    assert pinned
    meta["fp32_nodes"] = pinned
    model.metadata_props[0].value = json.dumps(meta)
    path = tmp_path / "pinned.onnx"
    onnx.save(model, path)
    lines = builder.trtexec_lines(path)
    assert "--preview=+profileSharing0806" in lines["8.6"]
    assert "--preview" not in lines["10.x"]
    assert f"{pinned[0]}:fp32" in lines["8.6"].replace("'", "")


@pytest.mark.parametrize("release", ["8.6", "10.3"])
def test_fp16_flag_build_pins_the_range_contract_nodes(release, graphs, tmp_path, monkeypatch):
    install(monkeypatch, release)
    model = onnx.load(str(graphs[0]))
    meta = json.loads(model.metadata_props[0].value)
    meta["fp32_nodes"] = [n.name for n in model.graph.node if n.op_type == "Softmax"]
    model.metadata_props[0].value = json.dumps(meta)
    path = tmp_path / "pinned.onnx"
    onnx.save(model, path)
    record = built(builder.build_engine(path, tmp_path, precision="fp16"))
    assert meta["fp32_nodes"] and set(meta["fp32_nodes"]) <= set(record["pinned"])


def test_timing_cache_rejected_by_tensorrt_starts_fresh(graphs, tmp_path, monkeypatch) -> None:
    """set_timing_cache returns False for another device's cache; it must not be kept."""
    install(monkeypatch, "10.3")
    plan_cache = tmp_path / "timing-orin-sm87-trt10.3.0.cache"
    plan_cache.write_bytes(b"foreign cache from another GPU")
    messages: list[str] = []
    builder.build_engine(graphs[0], tmp_path, precision="fp32", progress=messages.append)
    assert any("ignoring unusable timing cache" in m for m in messages)
    assert plan_cache.read_bytes() == b"fresh-timing-cache"


def test_tensorrt_warnings_pass_through_and_verbose_adds_info(graphs, tmp_path, monkeypatch):
    install(monkeypatch, "8.6")
    quiet: list[str] = []
    builder.build_engine(graphs[0], tmp_path / "a", precision="fp32", progress=quiet.append)
    assert any(m.startswith("TensorRT WARNING: fake builder") for m in quiet)
    assert not any("TensorRT INFO" in m for m in quiet)
    loud: list[str] = []
    builder.build_engine(
        graphs[0], tmp_path / "b", precision="fp32", progress=loud.append, verbose=True
    )
    assert any(m.startswith("TensorRT INFO: fake builder") for m in loud)


def test_trtexec_lines_of_the_real_half_graph_keep_the_head_fp32(graphs) -> None:
    head = read_onnx_info(graphs[1]).fp32_layers
    lines = builder.trtexec_lines(graphs[1])
    assert "--stronglyTyped" in lines["10.x"]
    spec = ",".join(f"{name}:fp32" for name in head)
    assert f"--layerPrecisions={spec}" in lines["8.6"].replace("'", "")
    assert f"--layerOutputTypes={spec}" in lines["8.6"].replace("'", "")
    assert any(n.startswith("/distance_head/ReduceMax") for n in head)


@pytest.fixture
def cached_trace(graphs, monkeypatch):
    """The CLI runs the real pipeline on the already traced graph (tracing is tested elsewhere)."""
    traced = onnx.load(str(graphs[0]))

    def trace(fused, batch, opset):
        copy = onnx.ModelProto()
        copy.CopyFrom(traced)
        return copy

    monkeypatch.setattr(pipeline, "trace_to_onnx", trace)


def test_cli_engine_with_tensorrt_11_and_fp32_onnx_fails_auto_keeps_onnx(
    cached_trace, graphs, tmp_path, monkeypatch, capsys
) -> None:
    install(monkeypatch, "11.4")
    ckpt = graphs[0].parent.parent / "small.pth"
    out = tmp_path / "o"
    args = ["export", "--ckpt", ckpt, "--out", out, "--no-verify", "--engine-dir", tmp_path / "e"]
    assert run_main(*args, "--format", "engine") == 2
    err = capsys.readouterr().err
    assert "uniad-edge export --half" in err and len(err.strip().splitlines()) == 1
    assert run_main(*args, "--format", "auto") == 0
    assert "uniad-edge export --half" in " ".join(capsys.readouterr().out.split())
    assert (out / "small.onnx").is_file()


def test_cli_engine_with_unsupported_tensorrt_fails_auto_keeps_onnx(
    cached_trace, graphs, tmp_path, monkeypatch, capsys
) -> None:
    install(monkeypatch, "10.16", "9.2.0")
    ckpt = graphs[0].parent.parent / "small.pth"
    args = ["export", "--ckpt", ckpt, "--out", tmp_path, "--no-verify"]
    assert run_main(*args, "--format", "engine") == 2
    err = capsys.readouterr().err
    assert "TensorRT 9.2.0" in err and "8.6, 10.x or 11.x" in err
    assert len(err.strip().splitlines()) == 1
    assert run_main(*args, "--format", "auto") == 0
    assert (tmp_path / "small.onnx").is_file()


def test_adopted_trtexec_engine_runs_and_is_found(graphs, tmp_path, monkeypatch) -> None:
    """An engine without a sidecar (as trtexec writes it) gets one from the ONNX's metadata."""
    install(monkeypatch, "10.3")
    built_engine = builder.build_engine(graphs[1], tmp_path / "built", max_batch=2)
    engine = tmp_path / "engines" / "small-half.fp16.engine"
    engine.parent.mkdir()
    engine.write_bytes(built_engine.read_bytes())  # what trtexec --saveEngine leaves: no sidecar
    args = ["adopt-engine", engine, "--onnx", graphs[1], "--max-batch", "2"]
    assert run_main(*args) == 0
    sidecar = EngineSidecar.read(sidecar_path(engine))
    assert sidecar.metadata == read_onnx_info(graphs[1]).metadata
    assert (sidecar.tensorrt_version, sidecar.gpu.name) == ("10.3.0", "Orin")
    assert sidecar.strongly_typed and sidecar.profile.max_batch == 2
    assert find_engines(engine.parent, "10.3.0", sidecar.gpu) == [engine]
    frames = np.zeros((3, 224, 224, 3), np.uint8)
    with TensorRTBackend(engine) as backend:
        maps, _ = backend.infer(frames)
    assert maps.shape == (3, 224, 224)


def test_adopt_without_local_tensorrt_needs_version_and_gpu(graphs, tmp_path, no_tensorrt):
    engine = tmp_path / "model.fp16.engine"
    engine.write_bytes(b"engine")
    args = ["adopt-engine", engine, "--onnx", graphs[0]]
    assert run_main(*args, "--trt-version", "8.6.2", "--gpu", "Orin:8.7") == 0
    assert EngineSidecar.read(sidecar_path(engine)).gpu.compute_capability == (8, 7)
    sidecar_path(engine).unlink()
    with pytest.raises(UniadError, match="--trt-version"):
        adopt_engine(engine, graphs[0], gpu=parse_gpu("Orin:8.7"))
    assert not sidecar_path(engine).exists()


def test_install_extras_pin_cuda_python_below_13_and_allow_tensorrt_11() -> None:
    """cuda-python 13 needs driver >= 580 (not JetPack 6 or CUDA-12 desktops)."""
    extras = tomllib.loads(Path("pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "cuda-python>=12,<13" in extras["tensorrt-cuda-python"]
    for name in ("tensorrt", "tensorrt-cuda-python"):
        spec = next(d for d in extras[name] if d.startswith("tensorrt"))
        assert spec == "tensorrt>=8.6,<12"
