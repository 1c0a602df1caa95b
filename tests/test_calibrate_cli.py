"""Issue 10: `uniad-edge calibrate` on a real ONNX Runtime session and real image files: the
thresholds land in the line's thresholds file beside the model (issue 27: the model's bytes are
never changed), `info` and `run` report where they came from, `run` on the same good images
stays within the printed bound, and a rollback works."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model, defect_frame, good_frame

from uniad_edge.artifacts import read_thresholds, write_thresholds
from uniad_edge.calibrate.stats import upper_bound
from uniad_edge.errors import UniadError
from uniad_edge.line_thresholds import thresholds_path
from uniad_edge.metadata import METADATA_KEY, Thresholds
from uniad_edge.runtime.detector import Detector

SIZE = (48, 64)
GOOD, BAD = 30, 10


@pytest.fixture
def data(tmp_path) -> Path:
    """bottle: good/ and bad/; cable: good/ only (plain folder layout, one class per folder)."""
    root = tmp_path / "val"
    for name, offset in (("bottle", 0), ("cable", 100)):
        (root / name / "good").mkdir(parents=True)
        for i in range(GOOD):
            frame = good_frame(SIZE, seed=offset + i)
            if i % 3 == 0:  # some good parts are dirtier: a spread of good scores
                frame = cv2.add(frame, np.full_like(frame, 3 * (i % 7)))
            cv2.imwrite(str(root / name / "good" / f"{i:03d}.png"), frame)
    (root / "bottle" / "bad").mkdir()
    for i in range(BAD):
        cv2.imwrite(str(root / "bottle" / "bad" / f"{i:03d}.png"), defect_frame(SIZE, seed=i))
    return root


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "export" / "model.onnx"
    build_model(path, per_class={"bottle": 40.0, "cable": 40.0}, threshold=40.0)
    return path


def line(path: Path) -> dict:
    """The line's thresholds file beside the model."""
    return json.loads(thresholds_path(path).read_text())["thresholds"]


def embedded(path: Path) -> dict:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])["thresholds"]


def scores_of(model: Path, folder: Path) -> np.ndarray:
    with Detector(model) as detector:
        frames = [cv2.imread(str(p)) for p in sorted(folder.iterdir())]
        return np.array([d.score for d in detector.predict(frames)])


def test_calibrate_writes_the_line_file_not_the_model_and_run_stays_within_the_bound(
    model, data, tmp_path, capsys
) -> None:
    exported = model.read_bytes(), model.with_suffix(".json").read_bytes()
    assert run_main("calibrate", "--model", model, "--data", data, "--target-fpr", "0.05") == 0
    printed = capsys.readouterr().out
    assert (model.read_bytes(), model.with_suffix(".json").read_bytes()) == exported
    assert embedded(model)["global"] == 40.0  # the export-time defaults stay in the model
    stored = line(model)
    assert stored["provenance"]["source"] == "calibration"
    assert stored["provenance"]["good"] == 2 * GOOD and stored["provenance"]["defective"] == BAD
    assert stored["history"][0]["global"] == 40.0 and stored["history"][0]["rule"] == "fixed"
    assert stored["history"][0]["replaced"] == stored["provenance"]["date"]
    assert "30 good images" in printed and "about 59 are needed" in printed  # too few for 5 %

    # Independently: the share of good bottle images at or above the new threshold.
    good = scores_of(model, data / "bottle" / "good")
    bad = scores_of(model, data / "bottle" / "bad")
    threshold = stored["per_class"]["bottle"]
    false = int((good >= threshold).sum())
    assert false <= 0.05 * GOOD and threshold != 40.0
    assert (bad >= threshold).mean() == 1.0
    bound = upper_bound(false, GOOD)
    assert f"{100 * bound:.1f}" in printed

    # `run` on the same good images: same false-alarm count, so within the printed bound.
    log = tmp_path / "run.jsonl"
    args = ("--model", model, "--source", data / "bottle" / "good", "--log", log)
    assert run_main("run", *args, "--class-name", "bottle") == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == GOOD and all(r["threshold"] == threshold for r in records)
    assert all("+t" in r["model"] for r in records)  # the model id names the thresholds too
    ng = sum(r["verdict"] == "NG" for r in records)
    assert ng == false and ng / GOOD <= bound
    err = capsys.readouterr().err
    assert len(re.findall(r"thresholds: calibrated", err)) == 1  # logged once

    assert run_main("info", model, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["threshold_provenance"].startswith("calibrated ")
    assert f"{2 * GOOD} good and {BAD} defective images of {data}" in info["threshold_provenance"]


def test_dry_run_writes_nothing_and_rollback_restores(model, data, capsys) -> None:
    before = model.read_bytes(), model.with_suffix(".json").read_bytes()
    args = ("--model", model, "--data", data, "--f1", "--dry-run")
    assert run_main("calibrate", *args) == 0
    assert "dry run: nothing written" in capsys.readouterr().out
    assert (model.read_bytes(), model.with_suffix(".json").read_bytes()) == before
    assert not thresholds_path(model).exists()

    original = read_thresholds(model)
    assert run_main("calibrate", "--model", model, "--data", data, "--target-recall", "0.9") == 0
    printed = capsys.readouterr().out
    assert "cable: no defective images" in printed  # keeps its previous threshold
    calibrated = read_thresholds(model)
    assert calibrated.per_class["cable"] == 40.0 and calibrated.per_class["bottle"] != 40.0
    assert run_main("calibrate", "--model", model, "--rollback") == 0
    restored = read_thresholds(model)
    assert restored == original and restored.history == []
    assert (model.read_bytes(), model.with_suffix(".json").read_bytes()) == before
    assert run_main("calibrate", "--model", model, "--rollback") == 2  # nothing left


def test_policy_and_data_errors_are_one_line(model, data, tmp_path, capsys) -> None:
    assert run_main("calibrate", "--model", model, "--data", data) == 2
    assert "choose exactly one policy" in capsys.readouterr().err
    args = ("--model", model, "--data", data, "--f1", "--target-fpr", "0.1")
    assert run_main("calibrate", *args) == 2
    assert run_main("calibrate", "--model", model, "--data", data, "--target-fpr", "2") == 2
    assert "(0, 1)" in capsys.readouterr().err
    stranger = data / "gear" / "good"
    stranger.mkdir(parents=True)
    cv2.imwrite(str(stranger / "0.png"), good_frame(SIZE))
    assert run_main("calibrate", "--model", model, "--data", data, "--target-fpr", "0.1") == 0
    assert "not trained on are left out: gear" in capsys.readouterr().out
    assert "gear" not in read_thresholds(model).per_class


def test_an_engine_keeps_its_sidecar_and_gets_a_thresholds_file(tmp_path, capsys) -> None:
    engine = tmp_path / "engines" / "model.engine"
    engine.parent.mkdir()
    engine.write_bytes(b"opaque serialized engine")
    meta = build_model(tmp_path / "m.onnx").to_dict()
    engine.with_suffix(".json").write_text(json.dumps({**meta, "engine": {"onnx_sha256": "x"}}))
    new = Thresholds(global_=7.5, rule="test", provenance={"source": "calibration"})
    sidecar = engine.with_suffix(".json").read_bytes()
    assert write_thresholds(engine, new) == [thresholds_path(engine)]
    assert engine.read_bytes() == b"opaque serialized engine"
    assert engine.with_suffix(".json").read_bytes() == sidecar
    assert read_thresholds(engine) == new
    capsys.readouterr()
    assert run_main("info", engine, "--json") == 0  # read from the sidecar, no TensorRT needed
    assert "calibrated" in json.loads(capsys.readouterr().out)["threshold_provenance"]
    with pytest.raises(UniadError, match="cannot store thresholds"):
        write_thresholds(tmp_path / "model.bin", new)
