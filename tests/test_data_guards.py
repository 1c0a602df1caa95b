"""Issue 10: guards around training data. `--resume` refuses another class set, data root or
preset; `eval` warns about classes the model never saw; folders the layout does not read are
listed instead of silently ignored."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_helpers import run_main
from model_helpers import TINY

from uniad_edge.data import open_dataset
from uniad_edge.data.synth import generate
from uniad_edge.errors import UniadError
from uniad_edge.train import TrainConfig, train


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("guards") / "data"
    generate(root, classes=3, train_per_class=4, test_per_class=4, size=64, seed=0)
    return root


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> Path:
    """One epoch on fabric and wood only (the dataset also has a third class)."""
    out = tmp_path_factory.mktemp("run")
    train(_config(data, out), show_progress=False)
    return out


def _config(data: Path, out: Path, **changes) -> TrainConfig:
    settings = {
        "preset": TINY,
        "epochs": 1,
        "batch_size": 4,
        "random_backbone": True,
        "classes": ["fabric", "wood"],
    }
    return TrainConfig(data=data, out=out, **{**settings, **changes})


def test_resume_refuses_other_classes_data_or_preset(data, run, tmp_path) -> None:
    third = sorted(p.name for p in data.iterdir() if p.name not in ("fabric", "wood"))[0]
    every = ",".join(sorted(["fabric", "wood", third]))
    with pytest.raises(UniadError, match=f"classes fabric,wood -> {every};"):
        train(_config(data, run, classes=None, resume=True), show_progress=False)
    with pytest.raises(UniadError, match=r"classes fabric,wood -> fabric;"):
        train(_config(data, run, classes=["fabric"], resume=True), show_progress=False)
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    with pytest.raises(UniadError, match=f"data {data} -> {copy}"):
        train(_config(copy, run, resume=True), show_progress=False)
    wider = TINY.replace(name="tiny-64-wide", hidden_dim=64)
    with pytest.raises(UniadError, match="preset tiny-64 -> tiny-64-wide"):
        train(_config(data, run, preset=wider, resume=True), show_progress=False)
    # The same run resumes (one more epoch).
    train(_config(data, run, epochs=2, resume=True), show_progress=False)


def test_eval_warns_about_classes_the_model_never_saw(data, run, capsys) -> None:
    third = sorted(p.name for p in data.iterdir() if p.name not in ("fabric", "wood"))[0]
    assert run_main("eval", "--ckpt", run / "last.pth", "--data", data, "--classes", third) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert f"the model was not trained on {third} (it knows fabric, wood)" in printed
    assert "at the model's stored thresholds" in printed  # the rates table


def test_a_class_test_folder_lists_the_defect_folders_it_ignores(data) -> None:
    test_dir = data / "fabric" / "test"
    defects = sorted(p.name for p in test_dir.iterdir() if p.name != "good")
    found = open_dataset(test_dir, "test")
    assert found.layout == "folder"
    warning = next(w for w in found.warnings if "ignored folders" in w)
    assert ", ".join(defects) in warning
    assert f"pass the dataset root {data}" in warning
    assert any("only every 5th good image is a test image" in w for w in found.warnings)


def test_mvtec_unknown_folders_and_test_without_good(data, tmp_path) -> None:
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / "fabric" / "notes").mkdir()
    (copy / "fabric" / "train" / "maybe").mkdir()
    (copy / "docs").mkdir()
    shutil.rmtree(copy / "wood" / "test" / "good")
    train_warnings = open_dataset(copy, "train").warnings
    assert any("fabric: ignored folders notes" in w for w in train_warnings)
    assert any("train: ignored folders maybe" in w for w in train_warnings)
    assert any("ignored folders without train/ or test/: docs" in w for w in train_warnings)
    test_warnings = open_dataset(copy, "test").warnings
    assert any("wood/test has no good/ folder" in w for w in test_warnings)
    assert open_dataset(data, "test").warnings == []  # a clean dataset says nothing
