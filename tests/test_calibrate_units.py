"""Issue 10: the statistics and threshold policies behind `uniad-edge calibrate`, checked
against known values and against rates recomputed here from the raw scores."""

from __future__ import annotations

import numpy as np
import pytest

from uniad_edge.calibrate import Policy, calibrate_scores, choose, images_needed, upper_bound
from uniad_edge.calibrate.stats import binomial_cdf
from uniad_edge.errors import UniadError
from uniad_edge.metadata import Thresholds


def test_clopper_pearson_known_values() -> None:
    # k = 0 has the closed form 1 - alpha^(1/n): 300 good images bound the rate near 1 %.
    assert upper_bound(0, 300) == pytest.approx(1 - 0.05 ** (1 / 300), abs=1e-12)
    assert upper_bound(0, 300) == pytest.approx(0.009936, abs=1e-6)
    # One-sided 95 % for 1 in 20 is 0.2161; the two-sided 95 % interval's upper end (one-sided
    # 97.5 %) is the often quoted 0.2487.
    assert upper_bound(1, 20) == pytest.approx(0.216106, abs=1e-6)
    assert upper_bound(1, 20, confidence=0.975) == pytest.approx(0.248733, abs=1e-6)
    assert upper_bound(5, 100) == pytest.approx(0.102253, abs=1e-6)
    assert upper_bound(7, 7) == 1.0
    with pytest.raises(ValueError):
        upper_bound(3, 2)


def test_clopper_pearson_agrees_with_scipy_where_available() -> None:
    beta = pytest.importorskip("scipy.stats").beta
    for k, n in [(0, 1), (0, 40), (2, 40), (13, 57), (3, 2000), (49, 50)]:
        assert upper_bound(k, n) == pytest.approx(beta.ppf(0.95, k + 1, n - k), abs=1e-9)


def test_binomial_cdf_and_images_needed() -> None:
    assert binomial_cdf(1, 3, 0.5) == pytest.approx(0.5)  # (1 + 3) / 8
    assert binomial_cdf(3, 3, 0.2) == 1.0 and binomial_cdf(-1, 3, 0.2) == 0.0
    assert images_needed(0.01) == 299  # "1 % needs about 300 good images"
    assert upper_bound(0, images_needed(0.05)) <= 0.05 < upper_bound(0, images_needed(0.05) - 1)


def _rate(scores: np.ndarray, threshold: float) -> float:
    return float(np.mean(scores >= threshold))


def test_target_fpr_allows_at_most_the_target_share_of_good_images() -> None:
    rng = np.random.default_rng(0)
    good, bad = rng.normal(1.0, 0.1, 200), rng.normal(1.5, 0.2, 50)
    for target in (0.01, 0.05, 0.2):
        t = choose(Policy("target-fpr", target), good, bad)
        assert _rate(good, t) <= target
        # The lowest such: down at the next good score below it, the target is exceeded.
        assert _rate(good, good[good < t].max()) > target
    # Halfway to the next score: a good image exactly at the edge stays OK.
    assert choose(Policy("target-fpr", 0.1), np.array([1.0, 2.0, 3.0]), np.array([4.0])) == 3.5


def test_target_recall_and_f1() -> None:
    good = np.array([1.0, 2.0, 3.0, 4.0])
    bad = np.array([3.5, 5.0, 6.0, 7.0])
    t = choose(Policy("target-recall", 0.75), good, bad)
    assert _rate(bad, t) >= 0.75 and 4.0 < t < 5.0  # the lowest defect may be missed
    t = choose(Policy("target-recall", 0.99), good, bad)
    assert _rate(bad, t) == 1.0 and 3.0 < t < 3.5
    # F1 at 3.5: TP 4, FP 1 (4.0) -> 8/9; at 5.0: TP 3, FN 1 -> 6/7; at 3.0: 8/10.
    t = choose(Policy("f1"), good, bad)
    assert 3.0 < t < 3.5
    assert choose(Policy("f1"), np.array([1.0]), np.array([])) is None
    assert choose(Policy("target-fpr", 0.1), np.array([]), bad) is None
    with pytest.raises(UniadError):
        Policy("target-fpr", 1.5)


def test_calibrate_scores_rates_recomputed_independently() -> None:
    rng = np.random.default_rng(1)
    names = ["a"] * 60 + ["b"] * 60
    labels = np.array(([0] * 40 + [1] * 20) * 2)
    scores = np.concatenate(
        [rng.normal(1, 0.1, 40), rng.normal(1.4, 0.2, 20)]
        + [rng.normal(3, 0.3, 40), rng.normal(4, 0.5, 20)]
    )
    before = Thresholds(global_=9.0, per_class={"a": 0.5}, rule="old", provenance={"x": 1})
    after, rows = calibrate_scores(
        scores, labels, names, Policy("target-fpr", 0.05), before, {"date": "D"}
    )
    assert [r.name for r in rows] == ["a", "b", "global"]
    for row in rows:
        mine = np.ones(len(names), bool) if row.name == "global" else np.array(names) == row.name
        good, bad = scores[mine & (labels == 0)], scores[mine & (labels == 1)]
        assert row.threshold == after.for_class(None if row.name == "global" else row.name)
        flagged = int(np.sum(good >= row.threshold))
        assert row.false_alarms == flagged and flagged <= 0.05 * good.size
        assert row.false_alarm_rate == pytest.approx(flagged / good.size)
        assert row.detection_rate == pytest.approx(np.mean(bad >= row.threshold))
        assert row.fpr_bound == pytest.approx(upper_bound(flagged, good.size))
        if good.size < 59:  # zero false alarms in 40 bound the rate at 7.2 %, not 5 %
            assert "7.2%" in row.warning and "about 59 are needed" in row.warning
        else:
            assert row.warning is None
        old = before.for_class(None if row.name == "global" else row.name)
        assert row.previous_false_alarm_rate == pytest.approx(np.mean(good >= old))
    assert after.history == [{**before.current(), "replaced": "D"}]
    assert after.rolled_back() == before
