"""Acceptance: `train` (mvtec-224, random-init backbone, CPU) then `eval` beats chance on the
synthetic dataset, and `info` describes the checkpoint with its classes and thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_main

from uniad_edge.data.synth import generate


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """fabric + wood, 8 good train (2 held out) and 8 test images each, 3 epochs, seed 0."""
    root = tmp_path_factory.mktemp("e2e")
    data = root / "data"
    generate(data, classes=2, train_per_class=8, test_per_class=8, size=128, seed=0)
    args = ("--preset", "mvtec-224", "--epochs", "3", "--random-backbone", "--no-progress")
    assert run_main("train", "--data", data, "--out", root / "run", *args, "--seed", "0") == 0
    return data, root / "run"


def test_train_then_eval_beats_chance(trained, tmp_path, capsys) -> None:
    data, run = trained
    out = tmp_path / "metrics.json"
    plots = tmp_path / "plots"
    args = ("--ckpt", run / "last.pth", "--data", data, "--json", out, "--plots", plots)
    assert run_main("eval", *args) == 0
    report = json.loads(out.read_text())
    assert report["image_auroc"]["mean"] > 0.6
    assert set(report["image_auroc"]) == {"mean", "fabric", "wood"}
    assert set(report["image_auroc_by_reduction"]) == {"max", "mean", "std"}
    assert 0 <= report["pixel_auroc"]["mean"] <= 1 and 0 <= report["aupro"]["mean"] <= 1
    assert report["backbone_pretrained"] is False
    assert (plots / "roc.png").stat().st_size > 10_000
    assert (plots / "heatmaps.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "random-init backbone" in printed and "image max*" in printed


def test_info_shows_classes_and_thresholds(trained, capsys) -> None:
    _, run = trained
    capsys.readouterr()
    assert run_main("info", run / "best.pth", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["class_names"] == ["fabric", "wood"]
    assert set(info["thresholds"]["per_class"]) == {"fabric", "wood"}
    assert info["thresholds"]["global"] > 0 and info["thresholds"]["rule"]
    assert info["backbone_pretrained"] is False


def test_calibrate_checkpoint_then_eval_reports_the_same_rates(trained, tmp_path, capsys) -> None:
    """Issue 10 on synth data: calibrate a checkpoint (PyTorch backend) in place; `info` shows
    the provenance, and `eval` (another scoring path) measures the rates calibrate printed."""
    import shutil

    from uniad_edge.artifacts import read_thresholds
    from uniad_edge.model import load_checkpoint

    data, run = trained
    ckpt = tmp_path / "best.pth"
    shutil.copy(run / "best.pth", ckpt)
    assert read_thresholds(ckpt).provisional
    assert run_main("info", ckpt) == 0
    assert "PROVISIONAL" in capsys.readouterr().out
    before = ckpt.read_bytes()
    assert run_main("calibrate", "--model", ckpt, "--data", data, "--target-fpr", "0.3") == 0
    capsys.readouterr()
    assert ckpt.read_bytes() == before  # the line's thresholds live beside the model (issue 27)
    assert load_checkpoint(ckpt).thresholds["provenance"]["source"] == "holdout"
    stored = read_thresholds(ckpt)
    assert stored.provenance["source"] == "calibration"
    assert stored.provenance["backend"] == "torch"
    assert stored.history[0]["provenance"]["source"] == "holdout"
    assert run_main("info", ckpt, "--json") == 0
    assert json.loads(capsys.readouterr().out)["threshold_provenance"].startswith("calibrated")
    out = tmp_path / "metrics.json"
    assert run_main("eval", "--ckpt", ckpt, "--data", data, "--json", out) == 0
    rates = json.loads(out.read_text())["at_threshold"]
    for name in ("fabric", "wood"):
        assert rates[name]["threshold"] == stored.per_class[name]
        assert rates[name]["false_alarm_rate"] <= 0.3
    assert any(rates[name]["detection_rate"] > 0 for name in ("fabric", "wood"))
