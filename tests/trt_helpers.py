"""Engine sidecars for TensorRT tests that need no TensorRT: what a build on an Orin writes."""

from __future__ import annotations

import dataclasses

from uniad_edge.metadata import ModelMetadata
from uniad_edge.trt.sidecar import EngineSidecar, GpuInfo, Profile

ORIN = GpuInfo("Orin", (8, 7))


def make_sidecar(**changes: object) -> EngineSidecar:
    """A complete sidecar of a TensorRT 8.6.2 fp16 build on Orin; `changes` override fields."""
    size = changes.get("input_size", (224, 224))
    meta = ModelMetadata(name="m", preset="mvtec-224", input_size=size, score_reduction="max")
    base = EngineSidecar(
        name="model",
        onnx_path="export/model.onnx",
        onnx_sha256="a" * 64,
        engine_sha256="b" * 64,
        tensorrt_version="8.6.2",
        gpu=ORIN,
        precision="fp16",
        strongly_typed=False,
        profile=Profile(1, 2, 8),
        input_name="image",
        input_size=(224, 224),
        workspace_bytes=4 << 30,
        cache_key="c" * 64,
        metadata=meta.to_dict(),
        fp32_layers=7,
        built_at="2026-01-01T00:00:00+00:00",
        build_seconds=12.5,
    )
    return dataclasses.replace(base, **changes)
