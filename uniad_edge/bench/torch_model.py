"""PyTorch eager as a `Backend`, so the reference runs through the same timing and `Detector`
code as ONNX Runtime and TensorRT and the speedups compare like with like."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from ..metadata import ModelMetadata
from ..model import FusedUniAD, build_model, load_checkpoint
from ..presets import Preset
from ..runtime.backend import Backend


def torch_device() -> torch.device:
    """The GPU when PyTorch sees one (the reference a GPU user would run), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TorchModelBackend(Backend):
    """FusedUniAD in eager mode; fp16 is autocast (mixed precision, head kept in float32).

    On a CPU, float16 autocast is emulated and much slower than float32: the row is measured
    anyway and marked, because that is what a user asking for fp16 on a CPU would get.
    """

    name = "torch"

    def __init__(
        self,
        preset: Preset,
        checkpoint: str | Path | None = None,
        precision: str = "fp32",
        threads: int | None = None,
    ) -> None:
        if threads is not None:
            torch.set_num_threads(threads)
        if checkpoint is not None:
            model = load_checkpoint(checkpoint).model
        else:
            torch.manual_seed(0)
            model = build_model(preset, pretrained=False)
        preset = model.preset
        self.device = torch_device()
        self.fused = FusedUniAD(model).eval().to(self.device)
        self.autocast = (
            torch.autocast(self.device.type, dtype=torch.float16)
            if precision == "fp16"
            else contextlib.nullcontext()
        )
        super().__init__(
            ModelMetadata(
                name=preset.name,
                preset=preset.name,
                input_size=preset.input_size,
                score_reduction=preset.score,
                score_pool=preset.score_pool,
                output_stride=preset.output_stride,
                feature_map=preset.feature_map,
                precision=precision,
            )
        )

    def infer(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Host uint8 in, host float32 out: copies to and from the GPU are part of the call."""
        batch = torch.from_numpy(images).to(self.device)
        with torch.inference_mode(), self.autocast:
            maps, scores = self.fused(batch)
        return maps.float().cpu().numpy(), scores.float().cpu().numpy()

    def peak_gpu_mb(self) -> float | None:
        if self.device.type != "cuda":
            return None
        return torch.cuda.max_memory_reserved(self.device) / 2**20
