"""AUROC and AU-PRO against cases small enough to check by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from uniad_edge.data import Sample
from uniad_edge.evaluate.evaluator import metrics_for, with_mean
from uniad_edge.evaluate.metrics import aupro, auroc, pro_curve
from uniad_edge.evaluate.scoring import Scored
from uniad_edge.metadata import Thresholds


def test_auroc_hand_case() -> None:
    # Pairs (anomalous, normal): 0.35>0.1 yes, 0.35>0.4 no, 0.8>both: 3 of 4 ordered -> 0.75.
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert auroc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)  # tie: half
    assert auroc(np.array([0, 0]), np.array([0.1, 0.2])) is None  # one label: undefined


def test_pro_curve_and_aupro_hand_case() -> None:
    # Region {p0, p1}; normal {p2, p3}. Descending: p0 (PRO .5), p2 (FPR .5), p1 (PRO 1), p3.
    mask = np.array([[1, 1, 0, 0]], np.uint8)
    scores = np.array([[0.9, 0.5, 0.7, 0.1]])
    fpr, pro = pro_curve([mask], [scores])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(pro, [0, 0.5, 0.5, 1, 1])
    # Up to FPR 0.3 PRO stays at 0.5: area 0.15, normalised by 0.3 -> 0.5.
    assert aupro([mask], [scores]) == pytest.approx(0.5)
    # Whole curve: 0.5 * 0.5 + 0.5 * 1 = 0.75.
    assert aupro([mask], [scores], max_fpr=1.0) == pytest.approx(0.75)


def test_aupro_weighs_regions_equally_not_pixels() -> None:
    # Image 1: a 1-pixel region found first; image 2: a 3-pixel region never above normal.
    small = np.array([[1, 0, 0]], np.uint8)
    large = np.array([[1, 1, 1, 0]], np.uint8)
    maps = [np.array([[1.0, 0.2, 0.2]]), np.array([[0.1, 0.1, 0.1, 0.5]])]
    fpr, pro = pro_curve([small, large], maps)
    # At 1.0: PRO = (1 + 0) / 2 = 0.5 although only 1 of 4 anomalous pixels is found.
    assert pro[1] == pytest.approx(0.5) and fpr[1] == 0
    assert aupro([small, large], maps) == pytest.approx(0.5)


def test_aupro_perfect_and_undefined() -> None:
    mask = np.zeros((8, 8), np.uint8)
    mask[2:4, 2:4] = 1
    mask[6:8, 5:8] = 1  # two separate regions
    assert aupro([mask], [mask.astype(float)]) == pytest.approx(1.0)
    assert aupro([np.zeros((4, 4), np.uint8)], [np.random.rand(4, 4)]) is None


def test_ties_count_as_one_threshold() -> None:
    mask = np.array([[1, 0]], np.uint8)
    fpr, pro = pro_curve([mask], [np.array([[0.5, 0.5]])])
    np.testing.assert_allclose(fpr, [0, 1])
    np.testing.assert_allclose(pro, [0, 1])


def _scored(labels: list[int], names: list[str], scores: list[float]) -> Scored:
    count = len(labels)
    maps = np.zeros((count, 4, 4), np.float32)
    masks = np.zeros((count, 4, 4), np.uint8)
    for i, (label, score) in enumerate(zip(labels, scores, strict=True)):
        maps[i] = score
        if label:
            masks[i, :2, :2] = 1
            maps[i, :2, :2] = score + 1
    pairs = enumerate(zip(labels, names, strict=True))
    samples = [Sample(Path(f"{n}{i}.png"), lab, n) for i, (lab, n) in pairs]
    by = {r: np.array(scores, float) for r in ("max", "mean", "std")}
    return Scored(samples, by, maps, masks, np.ones(count, bool))


def test_per_class_metrics_with_a_class_without_anomalies() -> None:
    scored = _scored(
        [0, 0, 1, 1, 0, 0], ["a", "a", "a", "a", "b", "b"], [0.1, 0.4, 0.35, 0.8, 1, 2]
    )
    found = metrics_for(scored, "max", Thresholds(global_=0.5, per_class={"a": 0.38}))
    assert found["image"]["max"] == {"a": pytest.approx(0.75), "b": None}
    assert with_mean(found["image"]["max"])["mean"] == pytest.approx(0.75)
    assert found["pixel"]["a"] == pytest.approx(1.0) and found["pixel"]["b"] is None
    assert found["aupro"]["b"] is None
    assert any("b: no anomalous test images" in note for note in found["notes"])
    # Class a at 0.38: normal 0.4 flagged (1 of 2), anomalous 0.8 caught (1 of 2).
    assert found["at_threshold"]["a"]["false_alarm_rate"] == pytest.approx(0.5)
    assert found["at_threshold"]["a"]["detection_rate"] == pytest.approx(0.5)
    assert found["at_threshold"]["b"]["threshold"] == 0.5  # falls back to the global one


def test_rates_use_the_thresholds_reduction_not_the_last_one() -> None:
    # max scores straddle the threshold; std scores are all tiny. The rates must be computed on
    # the preset's reduction (max): the old loop scored the std reduction and reported 0.0.
    scored = _scored([0, 0, 0, 0, 1, 1], ["a"] * 6, [1.0, 2.0, 3.0, 6.0, 4.0, 7.0])
    scored.scores["std"] = np.full(6, 1e-3)
    scored.scores["mean"] = np.full(6, 1e-3)
    found = metrics_for(scored, "max", Thresholds(global_=3.5))
    rates = found["at_threshold"]["a"]
    labels = np.array([0, 0, 0, 0, 1, 1])
    flagged = scored.scores["max"] >= 3.5  # recomputed independently of `_rates`
    assert rates["false_alarm_rate"] == pytest.approx(flagged[labels == 0].mean()) == 0.25
    assert rates["detection_rate"] == pytest.approx(flagged[labels == 1].mean()) == 1.0
