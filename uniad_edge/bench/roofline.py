"""The machine's dense matmul rate: the ceiling that achieved model GFLOP/s is read against.

A square matmul is the best case for any engine, so achieved/peak says how much of the machine a
backend turns into model work (convolutions with few channels and attention rarely reach it).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

import numpy as np

SIZE = 1024


def _rate(
    fn: Callable[[], object], flops: float, seconds: float, sync: Callable[[], None]
) -> float:
    """Best-of GFLOP/s over repeated calls for about `seconds` (best, because peak is the claim).

    The first call warms up; when it alone outlasts `seconds` (fp16 emulated on a CPU takes
    seconds per call) it is the measurement, so a slow dtype cannot stall the run.
    """
    start = time.perf_counter()
    fn()
    sync()
    best = time.perf_counter() - start
    deadline = start + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def measure_peaks(size: int = SIZE, seconds: float = 1.0) -> list[dict[str, Any]]:
    """numpy fp32 on the CPU; torch fp32/bf16/fp16 on the CPU and, when present, on the GPU.

    A dtype the device cannot multiply is reported with its error instead of a rate.
    """
    flops = 2.0 * size**3
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, size, size), dtype=np.float32)
    peaks = [
        {
            "library": "numpy",
            "device": "cpu",
            "dtype": "fp32",
            "gflops_per_s": _rate(lambda: a @ b, flops, seconds, lambda: None),
        }
    ]
    if importlib.util.find_spec("torch") is not None:
        peaks += _torch_peaks(size, flops, seconds)
    return peaks


def _torch_peaks(size: int, flops: float, seconds: float) -> list[dict[str, Any]]:
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    peaks = []
    for device in devices:
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for name, dtype in dtypes.items():
            row: dict[str, Any] = {"library": "torch", "device": device, "dtype": name}
            try:
                x = torch.randn(size, size, device=device).to(dtype)
                y = torch.randn(size, size, device=device).to(dtype)
                row["gflops_per_s"] = _rate(lambda x=x, y=y: x @ y, flops, seconds, sync)
            except RuntimeError as exc:
                row["gflops_per_s"] = None
                row["error"] = str(exc).splitlines()[0]
            peaks.append(row)
    return peaks


def peak_for(peaks: list[dict[str, Any]], device: str, precision: str) -> float | None:
    """Best measured rate for a row's device ("cpu"/"cuda") and precision (fp16 rows count
    against the fp16 peak, fp32 rows against fp32): None when not measured."""
    rates = [
        p["gflops_per_s"]
        for p in peaks
        if p["device"] == device and p["dtype"] == precision and p.get("gflops_per_s")
    ]
    return max(rates) if rates else None
