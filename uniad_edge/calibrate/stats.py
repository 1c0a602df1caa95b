"""How far a false-alarm rate measured on n good images can be trusted: the Clopper-Pearson
upper confidence bound, in pure Python so the lean runtime install can calibrate too.

With k false alarms among n good images, the one-sided upper bound p_U at confidence c solves
P(Binomial(n, p_U) <= k) = 1 - c. This is the (c) quantile of Beta(k + 1, n - k), since for
integer parameters the regularized incomplete beta I_p(k + 1, n - k) equals
P(Binomial(n, p) >= k + 1); the binomial form needs only log-gamma and is exact.
"""

from __future__ import annotations

import math

import numpy as np

CONFIDENCE = 0.95


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (stable for n in the thousands)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    terms = [
        log_n - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * log_p + (n - j) * log_q
        for j in range(k + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def upper_bound(k: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound on a rate observed as k events in n trials.

    Bisection on p (the CDF falls monotonically in p): 200 halvings reach float precision.
    """
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if k == n:
        return 1.0
    alpha = 1.0 - confidence
    low, high = k / n, 1.0
    for _ in range(200):
        mid = (low + high) / 2
        if binomial_cdf(k, n, mid) > alpha:
            low = mid
        else:
            high = mid
        if high - low < 1e-15:
            break
    return high


def images_needed(target: float, confidence: float = CONFIDENCE) -> int:
    """Good images needed so that zero false alarms bound the rate at `target`:
    (1 - target)^n <= 1 - confidence (about 3 / target at 95 %)."""
    if not 0 < target < 1:
        raise ValueError(f"target rate must be in (0, 1), got {target}")
    return math.ceil(math.log(1.0 - confidence) / math.log1p(-target))


def threshold_rates(
    good: np.ndarray, bad: np.ndarray, threshold: float | None
) -> tuple[int | None, float | None, float | None]:
    """(false alarms, false-alarm rate, detection rate) at `threshold`; NG is score >= it.

    The one rule for rates at a threshold: `calibrate` prints them and `eval` reports them."""
    if threshold is None:
        return None, None, None
    false = int((good >= threshold).sum())
    fpr = false / good.size if good.size else None
    detected = float((bad >= threshold).mean()) if bad.size else None
    return (false if good.size else None), fpr, detected
