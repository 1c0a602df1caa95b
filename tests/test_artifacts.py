"""Issue 18 item 1: one table of artifact kinds and one reader. No module outside
`uniad_edge/artifacts.py` lists model-file suffixes, every surface agrees on them (case too), and
the Triton exporter reads an engine's batch profile the way the engine builder writes it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from onnx_fixtures import build_model, fixture_metadata

from uniad_edge.artifacts import CHECKPOINT, ENGINE, KINDS, ONNX, URL, kind_of, open_artifact, stem
from uniad_edge.errors import UniadError
from uniad_edge.export.triton_repo import TritonOptions, export_triton
from uniad_edge.runtime.backends import registry
from uniad_edge.trt.sidecar import EngineSidecar, GpuInfo, Profile

PACKAGE = Path(__file__).resolve().parents[1] / "uniad_edge"
MODEL_SUFFIXES = {s for kind in KINDS.values() for s in kind.suffixes}


def _model_suffix_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants that are a model suffix (".onnx", ".PTH"...), outside f-strings (those
    build file names rather than compare them), and names like ENGINE_SUFFIXES being defined."""
    in_fstring = {
        id(n) for j in ast.walk(tree) if isinstance(j, ast.JoinedStr) for n in ast.walk(j)
    }
    found = []
    for node in ast.walk(tree):
        text = node.value if isinstance(node, ast.Constant) else None
        if isinstance(text, str) and text.lower() in MODEL_SUFFIXES and id(node) not in in_fstring:
            found.append((node.lineno, text))
        if isinstance(node, ast.Assign):
            for target in node.targets:
                name = getattr(target, "id", "")
                if any(k.upper() in name for k in (ONNX, ENGINE, CHECKPOINT, "MODEL")) and (
                    name.endswith("_SUFFIXES")
                ):
                    found.append((node.lineno, name))
    return found


def test_no_module_outside_artifacts_lists_model_suffixes() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "artifacts.py":
            continue
        for line, text in _model_suffix_literals(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text}")
    assert offenders == [], "ask uniad_edge.artifacts instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    ("name", "kind", "backend"),
    [
        ("m.onnx", ONNX, "onnxruntime"),
        ("M.ONNX", ONNX, "onnxruntime"),
        ("m.Plan", ENGINE, "tensorrt"),
        ("best.PTH", CHECKPOINT, "torch"),
        ("ckpt.pth.tar", CHECKPOINT, "torch"),
        ("last.ckpt", CHECKPOINT, "torch"),
        ("GRPC://127.0.0.1:8001/uniad", URL, "triton"),
    ],
)
def test_every_surface_agrees_on_what_a_path_is(name, kind, backend) -> None:
    assert kind_of(name).name == kind
    assert registry.resolve(name) == backend


def test_stem_drops_the_whole_checkpoint_suffix() -> None:
    assert stem("runs/a/best.pth") == "best" and stem("ckpt.PTH.TAR") == "ckpt"
    assert stem("model.onnx") == "model"


def test_open_artifact_reads_onnx_engine_and_refuses_unknown(tmp_path) -> None:
    onnx = tmp_path / "m.onnx"
    meta = build_model(onnx, threshold=12.5)
    opened = open_artifact(onnx)
    assert opened.kind.name == ONNX and opened.metadata.thresholds.global_ == 12.5
    assert opened.source == str(onnx) and opened.warnings == []  # its sidecar is a true copy
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    _engine_sidecar(engine, Profile(1, 2, 4))
    opened = open_artifact(engine)
    assert opened.kind.name == ENGINE and opened.metadata.input_size == meta.input_size
    assert opened.build["profile"] == {"min": 1, "opt": 2, "max": 4}
    with pytest.raises(UniadError, match=r"cannot tell what .*m\.bin is; use \.onnx"):
        open_artifact(tmp_path / "m.bin")


def _engine_sidecar(engine: Path, profile: Profile) -> None:
    """The sidecar exactly as the engine builder writes it (`EngineSidecar.write`)."""
    EngineSidecar(
        name="m",
        onnx_path="m.onnx",
        onnx_sha256="0" * 64,
        engine_sha256="1" * 64,
        tensorrt_version="10.3.0",
        gpu=GpuInfo("NVIDIA Orin", (8, 7)),
        precision="fp16",
        strongly_typed=False,
        profile=profile,
        input_name="image",
        input_size=(32, 32),
        workspace_bytes=1 << 30,
        cache_key="k",
        metadata=fixture_metadata().to_dict(),
    ).write(engine.with_suffix(".json"))


def test_triton_refuses_an_engine_built_without_batch_1(tmp_path) -> None:
    """The sidecar says min/opt/max; reading `min_batch` raised a KeyError that was swallowed, so
    an engine built for batches 2..4 went into a repository that sends 1..8."""
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"serialized engine bytes")
    _engine_sidecar(engine, Profile(2, 4, 4))
    with pytest.raises(UniadError, match=r"built for batches 2\.\.4 but Triton sends 1\.\.8"):
        export_triton(engine, tmp_path / "repo", TritonOptions())
    assert not (tmp_path / "repo" / "uniad" / "1").exists()


def test_triton_refuses_a_damaged_profile(tmp_path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    sidecar = engine.with_suffix(".json")
    sidecar.write_text(json.dumps({**fixture_metadata().to_dict(), "engine": {"profile": {}}}))
    with pytest.raises(UniadError, match="no valid batch profile"):
        export_triton(engine, tmp_path / "repo", TritonOptions())
