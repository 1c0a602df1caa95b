"""The synthetic dataset: determinism, honest masks, no global-statistics shortcut, the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from uniad_edge.data import open_dataset, read_mvtec
from uniad_edge.data.synth import CLASSES, MARKER, generate, render
from uniad_edge.errors import UniadError


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_files_and_a_readable_mvtec_layout(tmp_path: Path) -> None:
    args = {"classes": 3, "train_per_class": 2, "test_per_class": 4, "size": 48}
    generate(tmp_path / "a", seed=7, **args)
    generate(tmp_path / "b", seed=7, **args)
    generate(tmp_path / "c", seed=8, **args)
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys() and a != c
    assert len([k for k in a if k.endswith("_mask.png")]) == 3 * 2

    test = open_dataset(tmp_path / "a", "test")
    assert test.layout == "mvtec" and test.skipped == 0
    assert test.class_names == sorted(c.name for c in CLASSES[:3])
    assert sum(s.label for s in test) == 6 and len(test) == 12
    for record in test.records():
        assert record.image.shape == (48, 48, 3)
        assert record.mask is not None and bool(record.mask.any()) == bool(record.label)
    assert len(read_mvtec(tmp_path / "a", "train")) == 6


@pytest.mark.parametrize("spec", CLASSES, ids=lambda c: c.name)
def test_defect_changes_exactly_its_mask_and_is_locally_visible(spec) -> None:
    for i, kind in enumerate(spec.defects):
        key = (11, i)
        good, empty = render(spec.name, 96, key)
        bad, mask = render(spec.name, 96, key, kind)
        assert not empty.any()
        inside = mask.astype(bool)
        assert inside.sum() >= 12, f"{spec.name}/{kind}: mask too small"
        assert np.array_equal(good[~inside], bad[~inside]), f"{spec.name}/{kind} leaks"
        diff = np.abs(good.astype(int) - bad.astype(int)).max(-1)[inside]
        assert diff.mean() > 20, f"{spec.name}/{kind}: defect barely visible ({diff.mean():.1f})"
        assert (diff > 0).mean() > 0.9, f"{spec.name}/{kind}: mask covers unchanged pixels"


def test_good_images_vary_and_defects_are_not_global_statistics(tmp_path: Path) -> None:
    generate(tmp_path / "d", classes=len(CLASSES), train_per_class=1, test_per_class=50, size=80)
    by_class: dict[str, list] = defaultdict(list)
    for record in read_mvtec(tmp_path / "d", "test").records():
        by_class[record.class_name].append(record)
    separations = []
    for name, records in by_class.items():
        labels = [r.label for r in records]
        pixels = [r.image.reshape(-1, 3).astype(np.float32) for r in records]
        stats = {
            "brightness": [p.mean() for p in pixels],
            "std": [p.std() for p in pixels],
            **{f"mean_{c}": [p[:, i].mean() for p in pixels] for i, c in enumerate("bgr")},
        }
        goods = [p for p, y in zip(pixels, labels, strict=True) if y == 0]
        assert np.std([p.mean() for p in goods]) > 3, f"{name}: good images barely vary"
        for stat, values in stats.items():
            auroc = roc_auc_score(labels, values)
            separation = max(auroc, 1 - auroc)
            assert separation < 0.8, f"{name}: {stat} alone separates defects (AUROC {auroc:.2f})"
            separations.append(separation)
    assert np.mean(separations) < 0.65


def test_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path: Path) -> None:
    calls = []

    def stop(name: str) -> None:
        calls.append(name)
        if len(calls) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "out", classes=2, train_per_class=4, test_per_class=4, size=32,
                 progress=stop)  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_other_folders_and_replaces_with_force(tmp_path: Path) -> None:
    keep = tmp_path / "mine" / "keep.txt"
    keep.parent.mkdir()
    keep.write_text("precious")
    with pytest.raises(UniadError, match="not a synthetic dataset"):
        generate(keep.parent, classes=1, train_per_class=1, test_per_class=2, size=32)
    assert keep.read_text() == "precious"

    out = tmp_path / "synth"
    generate(out, classes=1, train_per_class=1, test_per_class=2, size=32)
    with pytest.raises(UniadError, match="pass --force"):
        generate(out, classes=1, train_per_class=1, test_per_class=2, size=32)
    generate(out, classes=2, train_per_class=1, test_per_class=2, size=32, force=True)
    assert len(read_mvtec(out, "train").class_names) == 2
    assert (out / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "synth"]


def test_cli_synth_writes_dataset_and_prints_summary(tmp_path: Path) -> None:
    from uniad_edge.cli import app

    out = tmp_path / "demo"
    args = ["synth", "--out", str(out), "--classes", "2", "--train-per-class", "2",
            "--test-per-class", "2", "--size", "32", "--seed", "3"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "fabric" in result.output and "wrote 8 images" in result.output
    assert len(read_mvtec(out, "test")) == 4


def test_cli_synth_bad_option_is_a_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from uniad_edge.cli import main; main()", "synth",
         "--out", str(tmp_path / "x"), "--classes", "9"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "error:" in result.stderr and "--classes must be 1..6" in result.stderr
    assert not (tmp_path / "x").exists()
