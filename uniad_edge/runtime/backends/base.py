"""One interface for every inference engine (Polygraphy's Runner idea): ONNX Runtime, TensorRT,
PyTorch. A backend takes a uint8 BGR batch at the model's input size and returns maps and scores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypeVar

import numpy as np

from ...metadata import ModelMetadata

_T = TypeVar("_T", bound="Closeable")


class Closeable:
    """`with` support for whatever holds sessions or device memory: leaving the block closes it."""

    def close(self) -> None:
        """Release sessions, contexts and device memory (nothing by default)."""

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Backend(Closeable, ABC):
    """Loads one artifact; `infer` is the hot path and must not allocate large buffers per call."""

    name: str = "backend"
    flushes_denormals: bool | None = None
    """Whether float32 subnormals are flushed to zero on the CPU (they stall x86 arithmetic,
    notably in a random-init network); None: not applicable or unknown. `bench` reports it."""

    def __init__(self, metadata: ModelMetadata) -> None:
        self.metadata = metadata

    @property
    def input_shape(self) -> tuple[int | None, int, int, int]:
        """(batch or None when dynamic, height, width, 3): what `infer` accepts."""
        h, w = self.metadata.graph_input_size
        return (self.metadata.batch, h, w, 3)

    @property
    def device_type(self) -> str:
        """Where `infer` computes: "cpu" or "cuda" (bench reports it per row)."""
        return "cpu"

    @abstractmethod
    def infer(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [B, H, W, 3] BGR -> (anomaly maps float32 [B, H, W], scores float32 [B]).

        The arrays belong to the caller: a backend never hands out a buffer it will overwrite
        on its next call, so results can be kept without copying each map.
        """
