"""Latency summaries: percentiles of per-iteration times, and the throughput they imply."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERCENTILES = (50, 90, 99)


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """Per-iteration times (s) -> {p50, p90, p99, mean, min, max} in ms.

    Linear interpolation keeps p50 <= p90 <= p99 for any sample, however small or noisy.
    """
    if not len(seconds):
        raise ValueError("no timings to summarise")
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    values = np.percentile(ms, PERCENTILES)
    summary = {f"p{p}": float(v) for p, v in zip(PERCENTILES, values, strict=True)}
    summary.update(mean=float(ms.mean()), min=float(ms.min()), max=float(ms.max()))
    return summary


def images_per_second(latency_ms: dict[str, float], batch: int) -> float:
    """batch / median latency: robust to the stalls of a shared machine (the mean is kept too)."""
    return batch * 1e3 / latency_ms["p50"]
