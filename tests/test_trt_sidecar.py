"""Engine sidecar, cache key, file naming and compatibility checks (no TensorRT needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from trt_helpers import ORIN, make_sidecar

from uniad_edge.errors import UniadError
from uniad_edge.metadata import ModelMetadata
from uniad_edge.trt.sidecar import (
    EngineSidecar,
    GpuInfo,
    Profile,
    cache_key,
    check_compatible,
    engine_path,
    find_engines,
    normalise_trt_version,
    resolve_profile,
    sidecar_path,
    timing_cache_path,
)

RTX = GpuInfo("NVIDIA GeForce RTX 4090", (8, 9))
KEY_ARGS = dict(
    onnx_sha256="a" * 64,
    trt_version="8.6.2",
    gpu=ORIN,
    precision="fp16",
    strongly_typed=False,
    profile=Profile(1, 1, 8),
    workspace_bytes=4 << 30,
)


def test_cache_key_is_stable_and_hex() -> None:
    assert cache_key(**KEY_ARGS) == cache_key(**dict(KEY_ARGS))
    assert len(cache_key(**KEY_ARGS)) == 64


@pytest.mark.parametrize(
    "field,value",
    [
        ("onnx_sha256", "f" * 64),
        ("trt_version", "10.3.0"),
        ("gpu", GpuInfo("Orin", (8, 6))),
        ("gpu", GpuInfo("Other", (8, 7))),
        ("precision", "fp32"),
        ("strongly_typed", True),
        ("profile", Profile(1, 4, 8)),
        ("profile", Profile(1, 1, 16)),
        ("workspace_bytes", 2 << 30),
    ],
)
def test_cache_key_changes_with_every_input(field: str, value: object) -> None:
    assert cache_key(**{**KEY_ARGS, field: value}) != cache_key(**KEY_ARGS)


def test_cache_key_ignores_packaging_suffix_of_version() -> None:
    assert normalise_trt_version("8.6.1.post1") == "8.6.1"
    assert normalise_trt_version("10.3.0.26") == "10.3.0"
    assert cache_key(**{**KEY_ARGS, "trt_version": "8.6.2.post1"}) == cache_key(**KEY_ARGS)


def test_gpu_slug_and_paths(tmp_path: Path) -> None:
    assert ORIN.slug == "orin-sm87"
    assert RTX.slug == "geforce-rtx-4090-sm89"
    engine = engine_path(tmp_path, "model", RTX, "fp16")
    assert engine.name == "model.geforce-rtx-4090-sm89.fp16.engine"
    assert sidecar_path(engine).name == "model.geforce-rtx-4090-sm89.fp16.json"
    assert (
        timing_cache_path(tmp_path, ORIN, "8.6.2.post1").name == "timing-orin-sm87-trt8.6.2.cache"
    )


def test_profile_static_vs_dynamic() -> None:
    assert resolve_profile(None, 1, 2, 8) == Profile(1, 2, 8)
    assert resolve_profile(4, 1, 2, 8) == Profile(4, 4, 4)
    assert resolve_profile(4, 1, 2, 8).is_static
    assert Profile(1, 2, 8).shapes(224, 320) == (
        (1, 224, 320, 3),
        (2, 224, 320, 3),
        (8, 224, 320, 3),
    )
    with pytest.raises(UniadError, match="min <= opt <= max"):
        Profile(2, 1, 8)
    with pytest.raises(UniadError):
        Profile(0, 1, 1)


def test_sidecar_round_trip_and_metadata_at_top_level(tmp_path: Path) -> None:
    sidecar = make_sidecar()
    path = tmp_path / "engines" / "model.orin-sm87.fp16.json"
    sidecar.write(path)
    assert EngineSidecar.read(path) == sidecar
    raw = json.loads(path.read_text())
    assert ModelMetadata.from_dict(raw).input_size == (224, 224)
    assert raw["engine"]["tensorrt_version"] == "8.6.2"
    assert raw["engine"]["profile"] == {"min": 1, "opt": 2, "max": 8}


def test_sidecar_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.json"
    make_sidecar().write(path)
    before = path.read_bytes()

    def fail(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        make_sidecar(tensorrt_version="10.3.0").write(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_sidecar_read_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UniadError, match="not found"):
        EngineSidecar.read(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UniadError, match="not a valid engine sidecar"):
        EngineSidecar.read(bad)
    onnx_sidecar = tmp_path / "model.json"
    onnx_sidecar.write_text(json.dumps({"name": "m"}))
    with pytest.raises(UniadError, match="not a valid engine sidecar"):
        EngineSidecar.read(onnx_sidecar)


def test_compatible_when_same_version_and_gpu() -> None:
    assert check_compatible(make_sidecar(), "8.6.2", ORIN) is None
    assert check_compatible(make_sidecar(), "8.6.2.post1", ORIN) is None


def test_incompatible_tensorrt_version_names_both() -> None:
    reason = check_compatible(make_sidecar(), "10.3.0", ORIN)
    assert reason is not None
    assert "8.6.2" in reason and "10.3.0" in reason and "GPU" not in reason


def test_incompatible_gpu_names_both() -> None:
    reason = check_compatible(make_sidecar(), "8.6.2", RTX)
    assert reason is not None
    assert "Orin" in reason and "RTX 4090" in reason and "8.7" in reason and "8.9" in reason


def test_incompatible_both_names_all_four() -> None:
    reason = check_compatible(make_sidecar(), "10.3.0", RTX) or ""
    for part in ("8.6.2", "10.3.0", "Orin", "RTX 4090"):
        assert part in reason


def test_find_engines_newest_compatible_first(tmp_path: Path) -> None:
    old = engine_path(tmp_path, "model", ORIN, "fp16")
    new = engine_path(tmp_path, "model", ORIN, "fp32")
    other = engine_path(tmp_path, "model", RTX, "fp16")
    for engine, sidecar in [
        (old, make_sidecar()),
        (new, make_sidecar(precision="fp32")),
        (other, make_sidecar(gpu=RTX)),
    ]:
        engine.write_bytes(b"x")
        sidecar.write(sidecar_path(engine))
    os.utime(old, (1, 1))
    (tmp_path / "orphan.engine").write_bytes(b"x")
    assert find_engines(tmp_path, "8.6.2", ORIN) == [new, old]
    assert find_engines(tmp_path, "8.6.2", ORIN, name="other") == []
    assert find_engines(tmp_path, "10.3.0", ORIN) == []
