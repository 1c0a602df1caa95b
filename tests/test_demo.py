"""`uniad-edge demo`, shortened: every stage runs for real and the report holds what it says.

On EfficientNet-Lite0 (its weights installed by the `[lite]` extra) the same pipeline trains,
exports, calibrates, runs the station and benchmarks on real ImageNet features, and says so."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import pytest

from uniad_edge.artifacts import read_thresholds
from uniad_edge.backbones import get_backbone
from uniad_edge.demo.config import QUICK
from uniad_edge.demo.steps import random_backbone_warning, run_demo
from uniad_edge.model.backbone import packaged_weights_path
from uniad_edge.presets import PRESETS
from uniad_edge.runtime.detector import Detector

LITE_INSTALLED = packaged_weights_path(get_backbone("efficientnet-lite0")) is not None
LITE = PRESETS["lite0-224"].replace(
    name="test-lite0-224", num_encoder_layers=2, num_decoder_layers=2
)


@pytest.mark.parametrize(
    "backbone",
    [
        "efficientnet-b4",
        pytest.param(
            "efficientnet-lite0",
            marks=pytest.mark.skipif(
                not LITE_INSTALLED,
                reason='the [lite] extra is not installed (pip install ".[lite]")',
            ),
        ),
    ],
)
def test_short_demo_writes_a_complete_report(tmp_path, small_preset, backbone, capsys) -> None:
    preset = small_preset if backbone == "efficientnet-b4" else LITE
    config = replace(
        QUICK,
        out=tmp_path / "demo",
        preset=preset,
        train_per_class=6,
        test_per_class=4,
        size=96,
        epochs=1,
        bench_runs=1,
    )
    result = run_demo(config)
    out = config.out
    md = result.report_md.read_text()
    page = result.report_html.read_text()
    if backbone == "efficientnet-lite0":  # pretrained offline, from the installed package
        assert result.pretrained and result.backbone == "ImageNet-pretrained (EfficientNet-Lite0)"
        assert "Warning" not in md and "random-init" not in md
        backbone_text = "ImageNet-pretrained (EfficientNet-Lite0)"
    else:
        assert not result.pretrained
        backbone_text = "random-init"
        # The offline way to real features, where a newcomer reads (issue 28 item 17).
        for text in (md, page, capsys.readouterr().out):
            assert "uniad-edge[lite]" in text and "lite0-224" in text
    for text in (backbone_text, "image AUROC", "onnxruntime", "torch", "Runtime"):
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
    if rows["onnxruntime"]["unstable"] or rows["torch"]["unstable"]:  # a busy machine
        assert rows["onnxruntime"]["speedup_vs_torch"] is None
    else:
        assert rows["onnxruntime"]["speedup_vs_torch"] > 0
    # PyTorch ran the exported model's own checkpoint, denormals flushed on both sides.
    assert any("the checkpoint the model was exported from" in n for n in rows["torch"]["notes"])
    assert rows["torch"]["denormals_flushed"] and rows["onnxruntime"]["denormals_flushed"]
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


def test_the_random_backbone_warning_names_the_offline_way() -> None:
    """Issue 28 item 17: not only a download URL, but the `[lite]` wheel and its preset."""
    b4 = random_backbone_warning(PRESETS["mvtec-224"])
    assert "download https://" in b4
    assert 'pip install "uniad-edge[lite]"' in b4 and "uniad-edge demo --preset lite0-224" in b4
    lite = random_backbone_warning(PRESETS["lite0-224"])  # its own hint is the wheel already
    assert 'pip install "uniad-edge[lite]"' in lite and "--preset" not in lite
