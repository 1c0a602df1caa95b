"""Issue 28 item 12: inputs that deserve a word. A 1x1 or a 20000x20 frame scored a confident
OK; 8x8 calibration images gave no warning; the same image in good/ and bad/ was not flagged;
the second corrupt file of a calibration folder was named only after the first was fixed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model, defect_frame, good_frame

from uniad_edge.runtime.detector import ERROR, Detector
from uniad_edge.runtime.frame_fit import MAX_STRETCH, MAX_UPSCALE, frame_problem

INPUT = (96, 96)


@pytest.mark.parametrize(
    ("frame_hw", "input_hw", "problem"),
    [
        ((1, 1), (224, 224), "far smaller than the model's 224x224 input"),
        ((20, 20000), (224, 224), "stretched 1000x"),
        ((20000, 20), (224, 224), "stretched 1000x"),
        ((27, 60), (224, 224), "far smaller"),
        ((224 // MAX_UPSCALE, 224 // MAX_UPSCALE), (224, 224), None),
        ((720, 1280), (224, 224), None),  # a 16:9 camera into a square model: 1.8x
        ((100, int(100 * MAX_STRETCH)), (224, 224), None),
        ((100, int(100 * MAX_STRETCH) + 2), (224, 224), "stretched"),
        ((48, 64), (32, 32), None),
    ],
)
def test_the_frame_fit_rule(frame_hw, input_hw, problem) -> None:
    found = frame_problem(frame_hw, input_hw)
    assert (found is None) if problem is None else (problem in found), found


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "export" / "model.onnx"
    build_model(path, input_size=INPUT, per_class={"part": 40.0}, threshold=40.0)
    return path


def test_a_frame_the_model_cannot_judge_is_an_error_with_its_reason(model) -> None:
    frames = [
        np.full((1, 1, 3), 128, np.uint8),
        good_frame((20, 20000)),
        good_frame((96, 128)),
    ]
    with Detector(model) as detector:
        tiny, strip, camera = detector.predict(frames)
    assert tiny.verdict == ERROR and "1x1 is far smaller" in tiny.error
    assert strip.verdict == ERROR and "stretched" in strip.error
    assert camera.error is None and camera.verdict in ("OK", "NG")


def _folder(root: Path, size: tuple[int, int], good: int, bad: int) -> Path:
    for label, count, make in (("good", good, good_frame), ("bad", bad, defect_frame)):
        folder = root / "part" / label
        folder.mkdir(parents=True)
        for i in range(count):
            cv2.imwrite(str(folder / f"{i:03d}.png"), make(size, seed=i))
    return root


def test_calibrate_warns_about_images_too_small_to_judge(model, tmp_path, capsys) -> None:
    data = _folder(tmp_path / "val", (8, 8), 20, 4)
    assert run_main("calibrate", "--model", model, "--data", data, "--f1", "--dry-run") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "24 of 24 images are not what the model can judge" in out
    assert "frame 8x8 is far smaller than the model's 96x96 input" in out


def test_the_same_image_in_good_and_bad_is_flagged(model, tmp_path, capsys) -> None:
    data = _folder(tmp_path / "val", INPUT, 12, 3)
    copy = data / "part" / "bad" / "copy.png"
    copy.write_bytes((data / "part" / "good" / "005.png").read_bytes())
    assert run_main("calibrate", "--model", model, "--data", data, "--f1", "--dry-run") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "1 image(s) are both good and defective" in out and "copy.png" in out
    assert "not what the model can judge" not in out


def test_every_corrupt_calibration_image_is_named_in_one_error(model, tmp_path, capsys) -> None:
    data = _folder(tmp_path / "val", INPUT, 12, 3)
    broken = [data / "part" / "good" / "002.png", data / "part" / "bad" / "001.png"]
    for path in broken:
        path.write_bytes(b"not a png")
    before = model.read_bytes()
    assert run_main("calibrate", "--model", model, "--data", data, "--f1") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 or "\n" not in " ".join(err.split()), err
    flat = " ".join(err.split())
    assert "2 image(s) cannot be read" in flat and all(str(p) in flat for p in broken), flat
    assert model.read_bytes() == before  # nothing written
