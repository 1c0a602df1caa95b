"""The backend registry: one table decides which backend opens which artifact, and a new backend
is one table entry plus its own module (proved with a backend defined here)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from onnx_fixtures import build_model, fixture_metadata

from uniad_edge.artifacts import KINDS, ArtifactKind
from uniad_edge.bench.config import BenchConfig, bench_backends
from uniad_edge.bench.worker import open_backend
from uniad_edge.errors import UniadError
from uniad_edge.metadata import PRECISIONS
from uniad_edge.runtime.backends import registry
from uniad_edge.runtime.backends.base import Backend
from uniad_edge.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from uniad_edge.runtime.backends.registry import BackendSpec
from uniad_edge.runtime.detector import Detector


class EchoBackend(Backend):
    """Scores every image 1000 + its mean pixel: unmistakable, and frames flow through it."""

    name = "echo"

    def __init__(self, source, threads=None) -> None:
        super().__init__(fixture_metadata(input_size=(8, 8), threshold=100.0))
        self.source, self.threads = source, threads

    def infer(self, images):
        means = 1000 + images.reshape(len(images), -1).mean(axis=1).astype(np.float32)
        return np.repeat(means[:, None, None], 64, axis=1).reshape(-1, 8, 8), means


ECHO_KIND = ArtifactKind("echo", "test artifact", suffixes=(".echo",), schemes=("echo",))
ECHO = BackendSpec(
    "echo",
    lambda: EchoBackend,
    "echo",
    "test backend",
    precisions=("fp32",),
    options=("threads",),
)
ECHO_ONNX = replace(ECHO, name="echo-onnx", artifact="onnx", auto=False)


@pytest.fixture
def echo(monkeypatch):
    monkeypatch.setitem(KINDS, "echo", ECHO_KIND)
    monkeypatch.setitem(registry.BACKENDS, "echo", ECHO)
    monkeypatch.setitem(registry.BACKENDS, "echo-onnx", ECHO_ONNX)


def test_every_suffix_in_the_table_resolves_to_its_backend():
    for spec in registry.BACKENDS.values():
        for suffix in KINDS[spec.artifact].suffixes if spec.auto else ():
            assert registry.resolve(f"dir/model{suffix.upper()}") == spec.name
    assert registry.resolve("m.onnx") == "onnxruntime"
    assert registry.resolve("m.plan") == "tensorrt"
    assert registry.resolve("ckpt.pth.tar") == "torch"
    assert registry.names()[0] == "auto" and set(registry.names()[1:]) == set(registry.BACKENDS)
    assert all(spec.artifact in KINDS for spec in registry.BACKENDS.values())


def test_unknown_or_mismatched_artifacts_are_one_line_errors(tmp_path):
    with pytest.raises(UniadError, match=r"from its suffix; use \.onnx, \.engine/\.plan, \.pth/"):
        registry.resolve("m.bin")
    with pytest.raises(UniadError, match="from its URL scheme"):
        registry.resolve("rtsp://localhost:8554/model")
    with pytest.raises(UniadError, match=r"backend 'tensorrt' takes \.engine/\.plan, not m\.onnx"):
        registry.resolve("m.onnx", "tensorrt")
    with pytest.raises(UniadError, match="unknown backend 'openvino'; choose one of: auto, onnx"):
        registry.load_backend(tmp_path / "m.onnx", backend="openvino")


def test_precisions_are_defined_once():
    from uniad_edge.bench import config
    from uniad_edge.model import torch_backend
    from uniad_edge.trt import builder, sidecar

    for module in (config, torch_backend, builder, sidecar):
        assert module.PRECISIONS is PRECISIONS
    assert all(set(s.precisions) <= set(PRECISIONS) for s in registry.BACKENDS.values())


def test_a_new_backend_is_one_table_entry(echo, tmp_path):
    model = tmp_path / "m.echo"
    model.write_bytes(b"")
    backend = registry.load_backend(model, threads=2, providers=["cpu"])
    assert isinstance(backend, EchoBackend) and backend.threads == 2  # providers: not its option
    url = registry.load_backend("echo://127.0.0.1:9/m")  # a URL is not checked as a file
    assert backend.name == "echo" and url.source == "echo://127.0.0.1:9/m"
    with Detector(model, threads=1) as detector:
        frame = np.full((20, 30, 3), 200, np.uint8)
        result = detector(frame)
    assert result.score == pytest.approx(1200.0) and result.verdict == "NG"
    assert bench_backends()[0] == "torch" and "echo" in bench_backends()
    assert BenchConfig(model=model, backends=("echo",)).backends == ("echo",)


def test_explicit_suffixes_only_when_the_backend_is_named(echo, tmp_path):
    onnx = tmp_path / "m.onnx"
    build_model(onnx)
    assert isinstance(registry.load_backend(onnx), OnnxRuntimeBackend)
    assert isinstance(registry.load_backend(onnx, backend="echo-onnx"), EchoBackend)
    with pytest.raises(UniadError, match="backend 'echo-onnx' runs fp32, not precision 'fp16'"):
        registry.load_backend(onnx, backend="echo-onnx", precision="fp16")


def test_a_backend_that_cannot_import_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(KINDS, "broken", ArtifactKind("broken", "test", suffixes=(".broken",)))

    def missing_module() -> type[Backend]:
        from uniad_edge_no_such_module import Nope  # type: ignore[import-not-found]

        return Nope

    broken = BackendSpec(
        "broken",
        missing_module,
        "broken",
        "missing",
        unavailable="cannot run {path}: install the broken extra ({exc})",
    )
    monkeypatch.setitem(registry.BACKENDS, "broken", broken)
    model = tmp_path / "m.broken"
    model.write_bytes(b"")
    with pytest.raises(UniadError, match=r"cannot run .*m\.broken: install the broken extra"):
        registry.load_backend(model)


def test_bench_worker_opens_rows_through_the_registry(tmp_path):
    onnx = tmp_path / "m.onnx"
    build_model(onnx)
    job = {"backend": "onnxruntime", "artifact": str(onnx), "threads": 1, "precision": "fp32"}
    backend, device = open_backend(job)
    assert isinstance(backend, OnnxRuntimeBackend) and device == "cpu"
    with pytest.raises(UniadError, match="unknown backend 'openvino'"):
        open_backend({**job, "backend": "openvino"})


def test_run_backend_option_goes_through_the_registry(echo, tmp_path, capsys):
    from cli_helpers import run_main
    from runtime_helpers import write_video

    onnx = tmp_path / "m.onnx"
    build_model(onnx)
    video = write_video(tmp_path / "v.mp4", good=2, bad=1)
    code = run_main("run", "--model", onnx, "--source", video, "--backend", "tensorrt")
    err = capsys.readouterr().err
    assert code == 2 and "backend 'tensorrt' takes .engine/.plan" in err
    log = tmp_path / "echo.jsonl"
    args = ("run", "--model", onnx, "--source", video, "--log", log)
    assert run_main(*args, "--backend", "echo-onnx") == 0
    scores = [json.loads(line)["score"] for line in log.read_text().splitlines()]
    assert len(scores) == 3 and all(1000 < s < 1256 for s in scores)  # echo's, not ORT's


def test_a_table_entry_declares_only_known_options():
    with pytest.raises(ValueError, match="options must be of"):
        BackendSpec("x", lambda: EchoBackend, "onnx", "x", options=("gpu",))
    assert all(f"{name}: " in registry.describe() for name in registry.BACKENDS)


def _fresh(code: str, *, no_torch: bool = False) -> str:
    """`code` run in a new interpreter (nothing registered yet); its stdout."""
    import subprocess
    import sys
    import textwrap

    hide = 'import sys; sys.modules["torch"] = None\n' if no_torch else ""
    done = subprocess.run(
        [sys.executable, "-c", hide + textwrap.dedent(code)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_pytorch_eager_joins_the_table_from_above_the_runtime(tmp_path):
    """The runtime alone opens exported models only; `uniad_edge.Detector` (like the CLI and
    bench) adds the torch row, and adding it again changes nothing."""
    ckpt = tmp_path / "m.pth"
    ckpt.write_bytes(b"")
    out = _fresh(f"""
        from uniad_edge.errors import UniadError
        from uniad_edge.runtime.backends import registry
        assert "torch" not in registry.BACKENDS
        try:
            registry.load_backend({str(ckpt)!r})
        except UniadError as exc:
            print(exc)
        import uniad_edge
        uniad_edge.Detector
        from uniad_edge.backends import TORCH, register_model_backends
        register_model_backends()
        assert registry.BACKENDS["torch"] is TORCH and registry.resolve("m.pth") == "torch"
        print("torch:" in registry.describe())
    """)
    error, described = out.splitlines()
    assert f"no backend here opens a PyTorch checkpoint ({ckpt})" in error
    assert described == "True"
    with pytest.raises(ValueError, match="backend 'onnxruntime' is already registered"):
        registry.register(replace(registry.BACKENDS["onnxruntime"], description="another"))


def test_a_checkpoint_without_torch_says_what_to_install(tmp_path):
    ckpt = tmp_path / "m.pth"
    ckpt.write_bytes(b"")
    out = _fresh(
        f"""
        from uniad_edge.backends import register_model_backends
        from uniad_edge.errors import UniadError
        from uniad_edge.runtime.backends import registry
        register_model_backends()
        try:
            registry.load_backend({str(ckpt)!r})
        except UniadError as exc:
            print(exc)
        """,
        no_torch=True,
    )
    assert out.startswith(f"cannot run checkpoint {ckpt}: PyTorch backend unavailable")
    assert "install `uniad-edge[train]`" in out and len(out.splitlines()) == 1
