"""Calibrating a subset of the model's classes (`--classes`) must not replace the GLOBAL
threshold, which a station on another class falls back to, with one pooled from other products;
the classes used are recorded in the provenance (and so in the history) in every case."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model, good_frame

from uniad_edge.artifacts import read_thresholds
from uniad_edge.calibrate import Policy, calibrate_scores
from uniad_edge.line_thresholds import thresholds_path
from uniad_edge.metadata import Thresholds

SIZE = (48, 64)
GOOD = 12
PREVIOUS = {"source": "holdout", "images": 6}


def _scores() -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(3)
    names = ["a"] * 40 + ["b"] * 40
    labels = np.zeros(80, int)
    return np.concatenate([rng.normal(1, 0.1, 40), rng.normal(3, 0.3, 40)]), labels, names


def _calibrate(before: Thresholds, date: str, model_classes: list[str]):
    """`calibrate_scores` on `_scores()` at a 5 % target false-alarm rate."""
    scores, labels, names = _scores()
    policy = Policy("target-fpr", 0.05)
    return calibrate_scores(
        scores, labels, names, policy, before, {"date": date}, model_classes=model_classes
    )


def test_subset_keeps_the_global_threshold_and_records_the_classes() -> None:
    scores, labels, _ = _scores()
    before = Thresholds(9.0, {"a": 0.5, "c": 7.0}, rule="old", provenance=dict(PREVIOUS))
    after, rows = _calibrate(before, "D", ["a", "b", "c"])
    assert after.global_ == 9.0  # not the pooled a+b threshold
    assert after.per_class["c"] == 7.0  # untouched
    assert after.per_class["a"] != 0.5 and "b" in after.per_class
    assert after.provenance["classes"] == ["a", "b"]
    assert after.provenance["global"] == PREVIOUS  # the kept global's own provenance
    glob = rows[-1]
    assert glob.name == "global" and glob.threshold == 9.0 and glob.previous == 9.0
    good = scores[labels == 0]
    assert glob.false_alarms == int((good >= 9.0).sum())
    assert "kept" in glob.warning and "a, b" in glob.warning and "c" in glob.warning
    assert "all classes" in glob.warning and "\n" not in glob.warning
    assert after.history == [{**before.current(), "replaced": "D"}]

    # Again on a subset: the global's provenance stays the one it was calibrated with.
    again, _ = _calibrate(after, "E", ["a", "b", "c"])
    assert again.global_ == 9.0 and again.provenance["global"] == PREVIOUS
    assert again.history[-1]["provenance"]["classes"] == ["a", "b"]


def test_all_classes_recalibrate_the_global_threshold_and_record_them() -> None:
    scores, labels, _ = _scores()
    before = Thresholds(9.0, {"a": 0.5}, rule="old", provenance=dict(PREVIOUS))
    after, rows = _calibrate(before, "D", ["a", "b"])
    good = scores[labels == 0]
    assert after.global_ == rows[-1].threshold != 9.0
    assert int((good >= after.global_).sum()) <= 0.05 * good.size
    assert after.provenance["classes"] == ["a", "b"] and "global" not in after.provenance
    assert rows[-1].warning is None or "kept" not in rows[-1].warning


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "export" / "model.onnx"
    build_model(path, per_class={"bottle": 40.0, "cable": 40.0, "screw": 40.0}, threshold=40.0)
    return path


@pytest.fixture
def data(tmp_path) -> Path:
    root = tmp_path / "val"
    for name, offset in (("bottle", 0), ("cable", 100)):
        (root / name / "good").mkdir(parents=True)
        for i in range(GOOD):
            frame = cv2.add(good_frame(SIZE, seed=offset + i), np.full((*SIZE, 3), i, np.uint8))
            cv2.imwrite(str(root / name / "good" / f"{i:03d}.png"), frame)
    return root


def test_cli_classes_subset_keeps_global_and_warns_once(model, data, capsys) -> None:
    args = ("--model", model, "--data", data, "--classes", "bottle", "--target-fpr", "0.1")
    assert run_main("calibrate", *args) == 0
    printed = capsys.readouterr().out
    stored = read_thresholds(model)
    assert stored.global_ == 40.0 and stored.per_class["bottle"] != 40.0
    assert stored.per_class["cable"] == 40.0 and stored.per_class["screw"] == 40.0
    assert stored.provenance["classes"] == ["bottle"]
    assert stored.provenance["global"] == {}  # the fixture's thresholds had no provenance
    line = json.loads(thresholds_path(model).read_text())["thresholds"]  # the line's file
    assert line["provenance"]["classes"] == ["bottle"]
    flat = " ".join(printed.split())  # rich wraps long lines at the terminal's width
    assert flat.count("warning: global:") == 1
    assert "warning: global: kept, not recalibrated: these images cover bottle only" in flat
    assert "calibrate on all classes" in flat

    # All of the model's classes present in the data: the global threshold is recalibrated.
    for i in range(GOOD):
        (data / "screw" / "good").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(data / "screw" / "good" / f"{i:03d}.png"), good_frame(SIZE, seed=200 + i))
    assert run_main("calibrate", "--model", model, "--data", data, "--target-fpr", "0.1") == 0
    stored = read_thresholds(model)
    assert stored.global_ != 40.0
    assert stored.provenance["classes"] == ["bottle", "cable", "screw"]
    assert stored.history[-1]["provenance"]["classes"] == ["bottle"]
