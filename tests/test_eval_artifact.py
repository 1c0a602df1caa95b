"""Issue 21 "Also": `eval` evaluates any artifact the runtime runs (scored through `Detector`,
as `calibrate` does), not only PyTorch checkpoints, and names what it accepts otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from cli_helpers import run_main
from onnx_fixtures import build_model, defect_frame, good_frame

SIZE = (48, 64)


def _mvtec(root: Path) -> Path:
    (root / "part" / "train" / "good").mkdir(parents=True)
    cv2.imwrite(str(root / "part" / "train" / "good" / "0.png"), good_frame(SIZE))
    for folder, make, count in (("good", good_frame, 6), ("crack", defect_frame, 4)):
        (root / "part" / "test" / folder).mkdir(parents=True)
        for i in range(count):
            cv2.imwrite(str(root / "part" / "test" / folder / f"{i}.png"), make(SIZE, seed=i))
    return root


def test_eval_scores_an_exported_onnx_through_the_runtime(tmp_path, capsys) -> None:
    model = tmp_path / "export" / "m.onnx"
    meta = build_model(model, input_size=SIZE, per_class={"part": 40.0}, threshold=40.0)
    data = _mvtec(tmp_path / "data")
    out = tmp_path / "metrics.json"
    assert run_main("eval", "--model", model, "--data", data, "--json", out) == 0
    report = json.loads(out.read_text())
    assert report["checkpoint"] == str(model) and report["preset"] == meta.preset
    assert report["counts"]["part"] == {"good": 6, "anomalous": 4}
    assert report["image_auroc"]["part"] == 1.0  # the fixture's defects score far higher
    assert report["at_threshold"]["part"]["threshold"] == 40.0
    assert report["at_threshold"]["part"]["detection_rate"] is not None


def test_eval_names_what_it_accepts(tmp_path, capsys) -> None:
    data = _mvtec(tmp_path / "data")
    bogus = tmp_path / "m.bin"
    bogus.write_bytes(b"x")
    assert run_main("eval", "--model", bogus, "--data", data) == 2
    err = capsys.readouterr().err
    assert "cannot evaluate" in err and ".onnx" in err and ".engine/.plan" in err and ".pth" in err
