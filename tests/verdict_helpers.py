"""Backends whose results cannot be trusted, for the fail-safe verdict tests: real ONNX Runtime
sessions whose outputs are then spoiled (NaN score or map) or that raise, as a float16
overflow or a broken engine would."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from onnx_fixtures import build_model

from uniad_edge.runtime.backends.base import Backend
from uniad_edge.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend


class SpoiledBackend(Backend):
    """The real model, then `spoil`: "score" (NaN scores), "map" (one NaN pixel per map),
    "raise" (a RuntimeError) or None (the real results). `batches` records every batch size."""

    def __init__(self, model: Path, spoil: str | None = "score") -> None:
        self.inner = OnnxRuntimeBackend(model)
        super().__init__(self.inner.metadata)
        self.name = "onnxruntime"
        self.spoil = spoil
        self.batches: list[int] = []
        self.lock = threading.Lock()

    @property
    def input_shape(self) -> tuple[int | None, int, int, int]:
        return self.inner.input_shape

    def infer(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            self.batches.append(len(images))
        if self.spoil == "raise":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        maps, scores = self.inner.infer(images)
        if self.spoil == "score":
            scores[:] = np.nan
        elif self.spoil == "map":
            maps[:, 0, 0] = np.inf
        return maps, scores

    def close(self) -> None:
        self.inner.close()


def threshold_40_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fixture model with a global threshold of 40, for a module-scoped `model` fixture."""
    path = tmp_path_factory.mktemp("verdict") / "model.onnx"
    build_model(path, threshold=40.0)
    return path


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
