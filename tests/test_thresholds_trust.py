"""Issue 10: a threshold is finite and > 0 wherever it comes from (flag, embedded metadata,
sidecar, API), and every surface words its provenance the same way."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model
from runtime_helpers import write_folder

from uniad_edge.errors import UniadError
from uniad_edge.metadata import METADATA_KEY, Thresholds, describe_provenance
from uniad_edge.runtime.detector import Detector
from uniad_edge.train.thresholds import fit_thresholds


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0.0, -1.0])
def test_flag_and_api_thresholds_must_be_finite_and_positive(tmp_path, value) -> None:
    path = tmp_path / "m.onnx"
    build_model(path)
    with pytest.raises(UniadError, match="finite and > 0"):
        Detector(path, threshold=value)
    with pytest.raises(ValueError, match="finite and > 0"):
        Thresholds(global_=value)
    with pytest.raises(ValueError, match="class 'a'"):
        Thresholds(global_=1.0, per_class={"a": value})


def test_run_refuses_an_infinite_threshold_flag(tmp_path, capsys) -> None:
    path = tmp_path / "m.onnx"
    build_model(path)
    source = write_folder(tmp_path / "frames", good=1, bad=0)
    assert run_main("run", "--model", path, "--source", source, "--threshold", "inf") == 2
    assert "finite and > 0" in capsys.readouterr().err


def test_sidecar_with_1e999_is_refused_naming_the_file(tmp_path) -> None:
    path = tmp_path / "m.onnx"
    build_model(path, embed_metadata=False)
    sidecar = path.with_suffix(".json")
    text = sidecar.read_text().replace('"global": 40.0', '"global": 1e999')
    assert "1e999" in text
    sidecar.write_text(text)
    with pytest.raises(UniadError, match=r"m\.json.*finite and > 0"):
        Detector(path)


def test_embedded_infinity_is_refused_by_detector_and_info(tmp_path, capsys) -> None:
    path = tmp_path / "m.onnx"
    build_model(path, sidecar=False)
    model = onnx.load(str(path))
    prop = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    data = json.loads(prop.value)
    data["thresholds"]["per_class"] = {"a": float("inf")}  # json writes Infinity
    prop.value = json.dumps(data)
    onnx.save(model, str(path))
    with pytest.raises(UniadError, match=r"m\.onnx.*class 'a'.*finite"):
        Detector(path)
    assert run_main("info", path) == 2
    assert "finite and > 0" in capsys.readouterr().err


def test_fit_thresholds_on_non_finite_scores_stores_none() -> None:
    assert fit_thresholds([1.0, float("nan")], ["a", "a"]).empty
    found = fit_thresholds([1.0, 2.0, 3.0], ["a", "a", "b"])
    assert found.provenance == {
        "source": "holdout",
        "images": 3,
        "per_class_images": {"a": 2, "b": 1},
    }


def test_provenance_wording() -> None:
    held = fit_thresholds(np.array([1.0, 2.0]), ["a", "a"])
    assert held.provisional
    assert describe_provenance(held).startswith("PROVISIONAL: from 2 good images held out")
    assert "uniad-edge calibrate" in describe_provenance(held)
    legacy = Thresholds(global_=1.0, rule="1.1 x the 99th percentile of held-out normal scores")
    assert legacy.provisional  # written before provenance was recorded
    calibrated = Thresholds(
        global_=1.0,
        provenance={
            "source": "calibration",
            "date": "2026-01-02",
            "data": "/d",
            "good": 300,
            "defective": 12,
            "policy": "target false-alarm rate 1%",
        },
    )
    assert not calibrated.provisional
    assert describe_provenance(calibrated) == (
        "calibrated 2026-01-02 on 300 good and 12 defective images of /d "
        "(target false-alarm rate 1%)"
    )
    assert "given explicitly" in describe_provenance(calibrated, override=2.0)
    assert describe_provenance(Thresholds()).startswith("no thresholds")
