"""`uniad-edge demo`, shortened: every stage runs for real and the report holds what it says."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2

from uniad_edge.artifacts import read_thresholds
from uniad_edge.demo.config import QUICK
from uniad_edge.demo.steps import run_demo
from uniad_edge.runtime.detector import Detector


def test_short_demo_writes_a_complete_report(tmp_path, small_preset) -> None:
    config = replace(
        QUICK,
        out=tmp_path / "demo",
        preset=small_preset,
        train_per_class=6,
        test_per_class=4,
        size=96,
        epochs=1,
        bench_runs=1,
    )
    result = run_demo(config)
    out = config.out
    assert not result.pretrained
    md = result.report_md.read_text()
    page = result.report_html.read_text()
    for text in ("random-init", "image AUROC", "onnxruntime", "torch", "Runtime"):
        assert text in md and text in page, text
    for image in ("plots/roc.png", "plots/heatmaps.png"):
        assert f"]({image})" in md and cv2.imread(str(out / image)) is not None

    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["steps"]) == 9
    numbers = summary["numbers"]
    truth = [f for path in (out / "lines").glob("*.json") for f in json.loads(path.read_text())]
    log = (out / "run.jsonl").read_text().splitlines()
    assert numbers["frames"] == len(truth) == len(log) > 0
    records = [json.loads(line) for line in log]
    ng = [r for r in records if r["verdict"] == "NG"]
    assert [r for r in records if "evidence" in r] == ng  # the log names every NG's files
    assert all((out / "ng" / name).is_file() for r in ng for name in r["evidence"].values())
    assert (out / "plots" / "run_ng.png").is_file() == bool(ng)  # tiles found via the log
    assert set(numbers["per_class"]) == {t["class_name"] for t in truth}
    assert 0.0 <= numbers["image_auroc_mean"] <= 1.0

    bench = json.loads((out / "bench.json").read_text())
    rows = {row["backend"]: row for row in bench["rows"]}
    assert rows["onnxruntime"]["status"] == "ok" and rows["torch"]["status"] == "ok"
    assert rows["onnxruntime"]["speedup_vs_torch"] > 0
    assert (out / "export" / "model.onnx").is_file()
    _check_calibration(out, md, numbers, log)


def _check_calibration(out, md: str, numbers: dict, log: list[str]) -> None:
    """The demo calibrated its model on its own validation images; the report shows the rates
    before and after, and the validation false alarms are recomputed here with the runtime."""
    assert "Thresholds: before and after calibrate" in md and "PROVISIONAL" in md
    assert "After: calibrated " in md
    found = numbers["thresholds"]
    evaluated = json.loads((out / "eval.json").read_text())["at_threshold"]
    assert found["test_before"] == evaluated  # training thresholds, as `eval` reported them
    model = out / "export" / "model.onnx"
    stored = read_thresholds(model)
    assert stored.source == "calibration" and stored.history[0]["provenance"]["source"] == "holdout"
    validation = out / "validation"
    for row in found["validation_rows"]:
        if row["name"] == "global":
            continue
        good = sorted((validation / row["name"] / "test" / "good").iterdir())
        with Detector(model, class_name=row["name"]) as detector:
            verdicts = [d.verdict for d in detector.predict([cv2.imread(str(p)) for p in good])]
        assert row["good"] == len(good) and row["false_alarms"] == verdicts.count("NG")
        assert row["threshold"] == stored.per_class[row["name"]]
    records = [json.loads(line) for line in log]
    assert {r["threshold"] for r in records} <= set(stored.per_class.values())
