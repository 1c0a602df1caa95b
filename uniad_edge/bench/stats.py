"""Latency summaries: percentiles of per-iteration times, and the throughput they imply."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERCENTILES = (50, 90, 99)
# A p99 above 5x the p50 means stalls from other work (a quiet CPU run stays within ~2x).
TAIL_RATIO = 5.0
# End-to-end without a map per frame is the engine plus a little: within this share below the
# engine-only p50 it is timing noise, not a contradiction.
E2E_NOISE = 0.1
QUIET_HINT = (
    "for a quiet measurement stop other work (watch the load average in the header), pass "
    "--threads below the core count and --seconds 10, and compare rows from the same run"
)


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


def instability(
    latency_ms: dict[str, float] | None, e2e_latency_ms: dict[str, float] | None
) -> str | None:
    """Why a row's numbers contradict themselves (the machine was busy), or None.

    End-to-end time includes the engine call, so its p50 cannot be clearly (`E2E_NOISE`) below
    the engine-only p50 on a quiet machine; and a p99 above `TAIL_RATIO` x p50 is interference.
    """
    reasons = []
    if (
        latency_ms
        and e2e_latency_ms
        and e2e_latency_ms["p50"] < (1 - E2E_NOISE) * latency_ms["p50"]
    ):
        reasons.append(
            f"end-to-end p50 {e2e_latency_ms['p50']:.1f} ms below engine-only p50 "
            f"{latency_ms['p50']:.1f} ms"
        )
    for label, lat in (("engine", latency_ms), ("end-to-end", e2e_latency_ms)):
        if lat and lat["p50"] > 0 and lat["p99"] > TAIL_RATIO * lat["p50"]:
            reasons.append(
                f"{label} p99 {lat['p99']:.1f} ms is {lat['p99'] / lat['p50']:.0f}x its p50"
            )
    return "; ".join(reasons) or None
