"""`bench --model half.onnx` without `--precision fp16` says to pass `--precision fp16`: the old
hint ("pass that export with --model") described what the user had just done."""

from __future__ import annotations

from pathlib import Path

import pytest

from uniad_edge.bench.artifacts import ModelSource, Unavailable


def test_other_precision_points_at_the_precision_flag(tmp_path) -> None:
    source = ModelSource(
        "onnx",
        "ONNX m16.onnx (mvtec-224, fp16)",
        tmp_path,
        prepared={("onnx", "fp16"): Path("m16.onnx")},
    )
    with pytest.raises(Unavailable) as caught:
        source.artifact_for("onnx", "fp32", 1, tmp_path)
    assert "--precision fp16" in str(caught.value)
