"""PyTorch eager as a `Backend`: run a checkpoint where torch happens to be installed, and the
reference that `bench` measures every speedup against, through the same `Detector` code.

It lives with the model, not in `uniad_edge.runtime`, so the lean runtime never imports torch;
its row in the runtime's backend table comes from `uniad_edge.backends`, whose factory imports
this module only when given a checkpoint. Imports go one way: this module uses the runtime's
`Backend`, never the reverse.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from ..metadata import PRECISIONS
from ..presets import Preset
from ..runtime.backends.base import Backend
from .autocast_check import check_autocast_drift
from .checkpoint import Checkpoint, load_checkpoint
from .deployment import build_metadata
from .uniad import FusedUniAD, build_model

TORCH_PRECISIONS = tuple(p for p in PRECISIONS if p != "int8")
"""int8 exists only as an exported Q/DQ graph (`export --precision int8`)."""


def torch_device() -> torch.device:
    """The GPU when PyTorch sees one (the reference a GPU user would run), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _random_checkpoint(preset: Preset) -> Checkpoint:
    """Random weights with a fixed seed: for speed only, like trtexec without real weights."""
    torch.manual_seed(0)
    model = build_model(preset, pretrained=False).eval()
    return Checkpoint(model, Path(f"<random-init {preset.name}>"), "random-init", "")


class TorchBackend(Backend):
    """FusedUniAD in eager mode; fp16 is autocast (mixed precision, head kept in float32),
    measured against float32 on the stress frames at load (`autocast_check`): a model that
    drifts is refused, not run.

    On a CPU, float16 autocast is emulated and much slower than float32; it runs anyway,
    because that is what a user asking for fp16 on a CPU would get.
    """

    name = "torch"

    def __init__(
        self,
        source: str | Path | Preset,
        precision: str = "fp32",
        threads: int | None = None,
    ) -> None:
        if precision not in TORCH_PRECISIONS:
            raise ValueError(f"precision must be one of {TORCH_PRECISIONS}, not {precision!r}")
        if threads is not None:
            torch.set_num_threads(threads)
        ckpt = _random_checkpoint(source) if isinstance(source, Preset) else load_checkpoint(source)
        self.device = torch_device()
        if self.device.type == "cpu":
            # As ONNX Runtime does (DENORMAL_AS_ZERO), so that bench compares like with like:
            # subnormal floats (a random-init or trained network makes them) stall x86
            # arithmetic. False on a CPU without flush-to-zero; bench then says so.
            self.flushes_denormals = torch.set_flush_denormal(True)
        self.fused = FusedUniAD(ckpt.model).eval().to(self.device)
        self.autocast = (
            torch.autocast(self.device.type, dtype=torch.float16)
            if precision == "fp16"
            else contextlib.nullcontext()
        )
        self.fp16_drift = (
            check_autocast_drift(self.fused, self.device, str(ckpt.path))
            if precision == "fp16"
            else None
        )
        name = ckpt.path.stem if ckpt.sha256 else ckpt.preset.name
        super().__init__(build_metadata(ckpt, name, batch=None, opset=0, precision=precision))

    @property
    def device_type(self) -> str:
        return self.device.type

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
