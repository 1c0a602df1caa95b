"""Tiny but real ONNX models that obey the export contract, for runtime tests and benchmarks.

The graph scores how far each pixel is from a reference BGR colour: uint8 BGR NHWC in, a
box-filtered distance map [B, H, W] and its maximum [B] out. Frames filled with the reference
colour score ~0; a bright blob scores high, like a defect on a uniform part.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper

from uniad_edge.metadata import (
    INPUT_NAME,
    METADATA_KEY,
    OUTPUT_MAP,
    OUTPUT_SCORE,
    ModelMetadata,
    Thresholds,
)

REFERENCE_BGR = (90, 120, 150)


def fixture_metadata(
    input_size: tuple[int, int] = (32, 32),
    batch: int | None = None,
    threshold: float | None = 40.0,
    per_class: dict[str, float] | None = None,
    pool: int = 5,
) -> ModelMetadata:
    """Metadata of a fixture model, as the exporter would write it."""
    return ModelMetadata(
        name="fixture",
        preset="fixture",
        input_size=input_size,
        score_reduction="max",
        score_pool=pool,
        output_stride=1,
        class_names=sorted(per_class or {}),
        thresholds=Thresholds(global_=threshold, per_class=dict(per_class or {}), rule="fixed"),
        batch=batch,
        opset=17,
    )


def build_model(
    path: str | Path,
    input_size: tuple[int, int] = (32, 32),
    *,
    batch: int | None = None,
    threshold: float | None = 40.0,
    per_class: dict[str, float] | None = None,
    pool: int = 5,
    extra_work: int = 0,
    embed_metadata: bool = True,
    sidecar: bool = True,
) -> ModelMetadata:
    """Write a contract-obeying ONNX model (and its JSON sidecar) to `path`; return its metadata.

    `extra_work` chains that many 3x3 convolutions over the map, to give benchmarks a model whose
    inference time dominates Python overhead, like a real UniAD graph.
    """
    h, w = input_size
    meta = fixture_metadata(input_size, batch, threshold, per_class, pool)
    b: int | str = batch if batch is not None else "batch"
    ref = np.array(REFERENCE_BGR, np.float32).reshape(1, 1, 1, 3)
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["x", "ref"], ["diff"]),
        helper.make_node("Mul", ["diff", "diff"], ["sq"]),
        helper.make_node("ReduceSum", ["sq", "axis_c"], ["sumsq"], keepdims=0),
        helper.make_node("Sqrt", ["sumsq"], ["dist"]),
        helper.make_node("Unsqueeze", ["dist", "axis_1"], ["dist4"]),
        helper.make_node(
            "AveragePool",
            ["dist4"],
            ["pooled0"],
            kernel_shape=[pool, pool],
            pads=[pool // 2] * 4,
            count_include_pad=0,
        ),
    ]
    inits = [
        helper.make_tensor("ref", TensorProto.FLOAT, ref.shape, ref.ravel()),
        helper.make_tensor("axis_c", TensorProto.INT64, [1], [3]),
        helper.make_tensor("axis_1", TensorProto.INT64, [1], [1]),
    ]
    last = "pooled0"
    if extra_work:
        identity = np.zeros((1, 1, 3, 3), np.float32)
        identity[0, 0, 1, 1] = 1.0
        inits.append(helper.make_tensor("k", TensorProto.FLOAT, identity.shape, identity.ravel()))
        for i in range(extra_work):
            out = f"pooled{i + 1}"
            nodes.append(helper.make_node("Conv", [last, "k"], [out], pads=[1, 1, 1, 1]))
            last = out
    nodes += [
        helper.make_node("Squeeze", [last, "axis_1"], [OUTPUT_MAP]),
        helper.make_node("ReduceMax", [OUTPUT_MAP], [OUTPUT_SCORE], axes=[1, 2], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "uniad_edge_fixture",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, [b, h, w, 3])],
        [
            helper.make_tensor_value_info(OUTPUT_MAP, TensorProto.FLOAT, [b, h, w]),
            helper.make_tensor_value_info(OUTPUT_SCORE, TensorProto.FLOAT, [b]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if embed_metadata:
        helper.set_model_props(model, {METADATA_KEY: meta.to_json()})
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    if sidecar:
        path.with_suffix(".json").write_text(json.dumps(meta.to_dict(), indent=2, sort_keys=True))
    return meta


def good_frame(size: tuple[int, int] = (48, 64), seed: int = 0) -> np.ndarray:
    """A defect-free BGR frame: the reference colour with mild sensor noise."""
    rng = np.random.default_rng(seed)
    frame = np.empty((*size, 3), np.int16)
    frame[:] = REFERENCE_BGR
    frame += rng.integers(-6, 7, frame.shape, dtype=np.int16)
    return np.clip(frame, 0, 255).astype(np.uint8)


def defect_frame(size: tuple[int, int] = (48, 64), seed: int = 0) -> np.ndarray:
    """A good frame with a bright blob, far from the reference colour."""
    frame = good_frame(size, seed)
    h, w = size
    rng = np.random.default_rng(seed + 1000)
    cy, cx = int(rng.integers(h // 4, 3 * h // 4)), int(rng.integers(w // 4, 3 * w // 4))
    radius = max(3, min(h, w) // 6)
    cv2.circle(frame, (cx, cy), radius, (250, 250, 250), -1)
    return frame


def export_real_graphs(root: Path) -> tuple[Path, Path]:
    """The real export of a small random-init model: (fp32 ONNX, mixed-precision ONNX).

    mvtec-224 geometry with one encoder and one decoder layer; the half graph is converted from
    the fp32 one exactly as `export --half` does, so one trace serves both.
    """
    from uniad_edge.export import export_onnx, to_mixed_precision
    from uniad_edge.model import build_model, save_checkpoint
    from uniad_edge.presets import PRESETS

    preset = PRESETS["mvtec-224"].replace(
        name="test-224", num_encoder_layers=1, num_decoder_layers=1
    )
    model = build_model(preset, pretrained=False).eval()
    ckpt = save_checkpoint(root / "small.pth", model, {"class_names": ["wood"]})
    fp32 = export_onnx(ckpt, root / "export", "small", verify=False).onnx_path
    graph = onnx.load(str(fp32))
    half = to_mixed_precision(graph)
    meta = ModelMetadata.from_json(next(p.value for p in graph.metadata_props))
    meta.precision = "fp16"
    helper.set_model_props(half, {METADATA_KEY: meta.to_json()})
    half_path = root / "export" / "small-half.onnx"
    onnx.save(half, half_path)
    return fp32, half_path


def named_model(path: Path, name: str, **options) -> Path:
    """A fixture model whose metadata says `name` (so its model id differs)."""
    meta = dataclasses.replace(build_model(path, **options), name=name)
    model = onnx.load(path)
    helper.set_model_props(model, {METADATA_KEY: meta.to_json()})
    onnx.save(model, path)
    path.with_suffix(".json").write_text(json.dumps(meta.to_dict()))
    return path
