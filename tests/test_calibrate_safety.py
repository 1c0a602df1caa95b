"""Issue 21 items 5-9 and "Also", with issue 27's thresholds home: what `calibrate` must never
do to a deployed model — lose a concurrent run's thresholds, change the model file at all (it
writes only the line's `.thresholds.json`, atomically), write when nothing was calibrated,
replace a symlink, overwrite a read-only thresholds file without --force, or set a threshold
that floods the line with false alarms without saying so."""

from __future__ import annotations

import fcntl
import json
import os
import stat
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model, defect_frame, good_frame
from rich.console import Console

from uniad_edge.artifacts import read_thresholds, threshold_warnings, write_thresholds
from uniad_edge.calibrate.calibrator import calibrate_scores, check_finite
from uniad_edge.calibrate.policy import Policy
from uniad_edge.data import Sample
from uniad_edge.errors import UniadError
from uniad_edge.line_thresholds import thresholds_path
from uniad_edge.metadata import METADATA_KEY, Thresholds

SIZE = (48, 64)


def _folder(root: Path, good: int, bad: int) -> Path:
    (root / "part" / "good").mkdir(parents=True)
    for i in range(good):
        frame = cv2.add(good_frame(SIZE, seed=i), np.full((*SIZE, 3), 2 * (i % 5), np.uint8))
        cv2.imwrite(str(root / "part" / "good" / f"{i:03d}.png"), frame)
    if bad:
        (root / "part" / "bad").mkdir()
        for i in range(bad):
            cv2.imwrite(str(root / "part" / "bad" / f"{i:03d}.png"), defect_frame(SIZE, seed=i))
    return root


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "export" / "model.onnx"
    build_model(path, per_class={"part": 40.0}, threshold=40.0)
    return path


def _embedded(path: Path) -> dict:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])["thresholds"]


def _line(path: Path) -> dict:
    return json.loads(thresholds_path(path).read_text())["thresholds"]


def _model(path: Path) -> tuple[bytes, bytes]:
    """The exported model's files (never rewritten after export)."""
    return path.read_bytes(), path.with_suffix(".json").read_bytes()


def _pair(path: Path) -> tuple[bytes, bytes, bytes | None]:
    """The model's files and the line's thresholds file (None while there is none)."""
    home = thresholds_path(path)
    return (*_model(path), home.read_bytes() if home.exists() else None)


def test_a_second_calibrate_on_a_locked_model_is_refused(model, tmp_path, capsys) -> None:
    """Item 5: a run already holding the model's lock file makes the second one stop, unwritten."""
    data = _folder(tmp_path / "val", 12, 4)
    before = _pair(model)
    with open(model.with_name(model.name + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        code = run_main("calibrate", "--model", model, "--data", data, "--f1")
    assert code != 0 and "being calibrated by another process" in capsys.readouterr().err
    assert _pair(model) == before
    assert run_main("calibrate", "--model", model, "--data", data, "--f1") == 0  # lock released
    assert _pair(model) != before and not model.with_name(model.name + ".lock").exists()


def test_ctrl_c_while_writing_leaves_the_old_thresholds_file(model, monkeypatch) -> None:
    """Item 6, one file now: an interrupt before the atomic replace leaves the old set and no
    stray temporary file; the model is never touched."""
    write_thresholds(model, Thresholds(global_=6.0, rule="old"))
    before = _pair(model)

    def interrupted(_src, _dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_thresholds(model, Thresholds(global_=7.5, per_class={"part": 8.5}, rule="new"))
    monkeypatch.undo()
    assert _pair(model) == before and _line(model)["global"] == 6.0
    assert sorted(p.name for p in model.parent.iterdir()) == sorted(
        [model.name, model.with_suffix(".json").name, thresholds_path(model).name]
    )


def test_a_model_with_older_embedded_calibration_keeps_working_with_a_note(
    model, tmp_path, caplog
) -> None:
    """An artifact written by an older calibrate (calibrated thresholds inside the model) is
    used as it is, with a one-line note; a thresholds file for other weights is not applied."""
    import onnx
    from runtime_helpers import write_video

    legacy = tmp_path / "legacy.onnx"
    calibrated = {"source": "calibration", "date": "2026-01-01"}
    build_model(legacy, per_class={"part": 3.0}, threshold=3.0)
    data = json.loads(legacy.with_suffix(".json").read_text())
    data["thresholds"]["provenance"] = calibrated
    legacy.with_suffix(".json").write_text(json.dumps(data))
    graph = onnx.load(str(legacy))
    for prop in graph.metadata_props:
        if prop.key == METADATA_KEY:
            meta = json.loads(prop.value)
            meta["thresholds"]["provenance"] = calibrated
            prop.value = json.dumps(meta)
    onnx.save(graph, str(legacy))
    video = write_video(tmp_path / "v.mp4", good=2, bad=0)
    log = tmp_path / "r.jsonl"
    assert run_main("run", "--model", legacy, "--source", video, "--log", log) == 0
    notes = [r for r in caplog.records if "calibrated thresholds inside" in r.getMessage()]
    assert len(notes) == 1 and str(thresholds_path(legacy)) in notes[0].getMessage()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["threshold"] for r in records} == {3.0} and "+t" not in records[0]["model"]

    foreign = {"schema": 1, "weights": "other@123456789abc", "thresholds": {"global": 1.0}}
    thresholds_path(model).write_text(json.dumps(foreign))
    caplog.clear()
    assert read_thresholds(model).global_ == 40.0
    assert "calibrated for the weights other@123456789abc" in caplog.text


def test_no_good_images_writes_nothing_and_fails(model, tmp_path, capsys) -> None:
    """Item 7: --target-fpr on defective images only calibrates nothing: exit non-zero, the
    hold-out provenance stays."""
    data = tmp_path / "mvtec"  # a test split holding defects only
    (data / "part" / "train" / "good").mkdir(parents=True)
    cv2.imwrite(str(data / "part" / "train" / "good" / "0.png"), good_frame(SIZE))
    (data / "part" / "test" / "crack").mkdir(parents=True)
    for i in range(8):
        cv2.imwrite(str(data / "part" / "test" / "crack" / f"{i}.png"), defect_frame(SIZE, seed=i))
    before = _pair(model)
    code = run_main("calibrate", "--model", model, "--data", data, "--target-fpr", "0.05")
    err = capsys.readouterr().err
    assert code != 0 and "nothing was calibrated" in err and "not changed" in err
    assert _pair(model) == before


def test_a_symlinked_model_keeps_its_link_and_its_files(model, tmp_path) -> None:
    """Item 8: the link stays a link, the line's file lands beside the path the line uses,
    and the model's files keep their bytes and modes."""
    link = tmp_path / "current.onnx"
    link.symlink_to(model)
    model.with_suffix(".json").chmod(0o640)
    model.chmod(0o664)
    before = _model(model)
    write_thresholds(link, Thresholds(global_=5.0, rule="x"))
    assert link.is_symlink() and read_thresholds(link).global_ == 5.0
    assert thresholds_path(link).is_file() and _model(model) == before
    assert stat.S_IMODE(model.stat().st_mode) == 0o664
    assert stat.S_IMODE(model.with_suffix(".json").stat().st_mode) == 0o640


def test_a_read_only_thresholds_file_is_refused_without_force(model) -> None:
    """A read-only model is never written, so it needs nothing; a read-only thresholds file
    (also for root, who may write anything: the mode bits say it is not to be changed) needs
    --force."""
    model.chmod(0o444)
    write_thresholds(model, Thresholds(global_=4.0, rule="x"))
    home = thresholds_path(model)
    home.chmod(0o444)
    before = _pair(model)
    with pytest.raises(UniadError, match="read-only.*--force"):
        write_thresholds(model, Thresholds(global_=5.0, rule="x"))
    assert _pair(model) == before
    write_thresholds(model, Thresholds(global_=5.0, rule="x"), force=True)
    assert read_thresholds(model).global_ == 5.0 and _model(model) == before[:2]


def test_a_threshold_below_every_good_score_is_warned_and_recorded() -> None:
    """Item 9: target-recall on defects that score lower than the good parts rejects every good
    part; calibrate says so, and the station's start-up hook says so again from the file."""
    good = np.linspace(5.0, 9.0, 20)
    bad = np.array([1.0, 2.0, 3.0])
    scores = np.concatenate([good, bad])
    labels = np.array([0] * 20 + [1] * 3)
    policy = Policy("target-recall", 0.9)
    after, rows = calibrate_scores(scores, labels, ["p"] * 23, policy, Thresholds(), {})
    assert all("below every good score" in (r.warning or "") for r in rows)
    hook = threshold_warnings(Thresholds.from_dict(after.to_dict()))
    assert hook and all("below every good score" in w for w in hook)


def test_a_high_false_alarm_rate_is_warned() -> None:
    good = np.linspace(1.0, 10.0, 50)
    bad = np.array([6.0, 7.0, 8.0, 9.5])
    scores, labels = np.concatenate([good, bad]), np.array([0] * 50 + [1] * 4)
    after, rows = calibrate_scores(
        scores, labels, ["p"] * 54, Policy("target-recall", 0.99), Thresholds(), {}
    )
    assert any(
        "of the good calibration images NG (more than 10%)" in (r.warning or "") for r in rows
    )
    assert threshold_warnings(after)


def test_an_f1_threshold_that_rejects_every_good_part_is_warned() -> None:
    """Item 9 under --f1: defects scoring below the good parts make the best F1 one that calls
    every part NG; calibrate says so instead of writing it silently."""
    good = np.linspace(5.0, 9.0, 20)
    bad = np.array([1.0, 2.0, 3.0])
    scores, labels = np.concatenate([good, bad]), np.array([0] * 20 + [1] * 3)
    after, rows = calibrate_scores(scores, labels, ["p"] * 23, Policy("f1"), Thresholds(), {})
    assert rows and all(r.warning for r in rows)
    assert all("below every good score" in (r.warning or "") for r in rows)
    assert threshold_warnings(after)


def test_the_calibrate_command_writes_through_a_link_and_needs_force_when_read_only(
    model, tmp_path, capsys
) -> None:
    """Item 8 end to end: `calibrate` on a symlink keeps the link and writes the line's file
    beside it; a 0444 thresholds file makes it exit non-zero with nothing written until
    --force; the model's bytes never change."""
    data = _folder(tmp_path / "val", 12, 4)
    link = tmp_path / "current.onnx"
    link.symlink_to(model)
    exported = _model(model)
    assert run_main("calibrate", "--model", link, "--data", data, "--f1") == 0
    assert link.is_symlink() and _line(link)["global"] != 40.0  # the fixture's threshold
    assert _embedded(model)["global"] == 40.0 and _model(model) == exported
    assert run_main("calibrate", "--model", model, "--data", data, "--f1") == 0
    thresholds_path(model).chmod(0o444)
    before = _pair(model)
    assert run_main("calibrate", "--model", model, "--data", data, "--f1") != 0
    assert "--force" in capsys.readouterr().err and _pair(model) == before
    args = ("--model", model, "--data", data, "--target-recall", "0.99", "--force")
    assert run_main("calibrate", *args) == 0
    assert stat.S_IMODE(thresholds_path(model).stat().st_mode) == 0o444
    assert _pair(model) != before and _model(model) == exported


def test_non_finite_scores_are_refused_naming_the_files(tmp_path) -> None:
    samples = [Sample(tmp_path / f"{i}.png", 0, "p") for i in range(3)]
    with pytest.raises(UniadError, match=r"1 image\(s\) scored NaN .*1\.png.*nothing was written"):
        check_finite(np.array([1.0, np.nan, 2.0]), samples)
    check_finite(np.array([1.0, 2.0, 3.0]), samples)


def test_dry_run_does_not_claim_new_thresholds(model, tmp_path, capsys) -> None:
    data = _folder(tmp_path / "val", 12, 4)
    before = _pair(model)
    assert run_main("calibrate", "--model", model, "--data", data, "--f1", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "thresholds: calibrated" not in out and "dry run: nothing written" in out
    assert _pair(model) == before


def test_rollback_shows_the_recorded_rates(model, tmp_path, capsys) -> None:
    data = _folder(tmp_path / "val", 12, 4)
    assert run_main("calibrate", "--model", model, "--data", data, "--f1") == 0
    assert run_main("calibrate", "--model", model, "--data", data, "--target-recall", "0.99") == 0
    capsys.readouterr()
    assert run_main("calibrate", "--model", model, "--rollback") == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("│ part")]
    assert rows and "0/0" not in rows[0].replace(" ", "") and " 12 " in rows[0]
    assert "- / -" not in rows[0]


def test_table_never_splits_a_number_when_not_a_terminal(model, tmp_path) -> None:
    from uniad_edge.calibrate import CalibrateConfig, calibrate
    from uniad_edge.calibrate.table import print_calibration

    data = _folder(tmp_path / "val", 12, 4)
    result = calibrate(CalibrateConfig(model=model, data=data, f1=True, dry_run=True))
    console = Console(width=80, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    print_calibration(result, console)
    text = console.export_text()
    for row in result.rows:
        assert f"{row.threshold:.6g}" in text and f"{row.previous:.6g}" in text


def test_a_station_warns_at_start_about_a_flooding_threshold(model, tmp_path, caplog) -> None:
    """Issue 21 item 9: `run` and `serve` (both a Station) say at start that the model's
    calibrated threshold flooded its own calibration images with false alarms."""
    from uniad_edge.runtime.station import CameraConfig, Station, StationConfig

    rates = {"global": {"false_alarm_rate": 0.7, "lowest_good": 1.0}}
    write_thresholds(model, Thresholds(global_=40.0, provenance={"rates": rates}))
    source = _folder(tmp_path / "frames", 2, 0) / "part" / "good"
    config = StationConfig(cameras=[CameraConfig("cam", str(source))], model=model)
    with caplog.at_level("WARNING", logger="uniad_edge.runtime.station"), Station(config) as st:
        st.run()
    assert any(
        "calls 70% of the good calibration images NG" in r.getMessage() for r in caplog.records
    )
