"""Detector API on real ONNX Runtime sessions: scores, thresholds, batches, frame formats."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_fixtures import build_model, defect_frame, good_frame

from uniad_edge.errors import UniadError
from uniad_edge.runtime.detector import Detector


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    build_model(path, per_class={"bottle": 20.0, "cable": 80.0}, threshold=40.0)
    return path


@pytest.fixture(scope="module")
def det(model_path):
    with Detector(model_path) as detector:
        yield detector


def test_top_level_lazy_import(model_path):
    from uniad_edge import Detector as Lazy

    assert Lazy is Detector


def test_good_ok_defect_ng_and_map_at_frame_size(det):
    good, bad = det(good_frame((60, 90))), det(defect_frame((60, 90)))
    assert good.verdict == "OK" and bad.verdict == "NG"
    assert good.is_anomalous is False and bad.is_anomalous is True
    assert bad.normalized_score == pytest.approx(bad.score / 40.0)
    assert bad.normalized_score > 1.0 > good.normalized_score
    assert bad.anomaly_map.shape == (60, 90) and bad.anomaly_map.dtype == np.float32
    assert bad.anomaly_map.max() > good.anomaly_map.max()


def test_overlay_draws_on_a_copy(det):
    frame = defect_frame((120, 160))
    out = det(frame).overlay(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert not np.array_equal(out, frame)
    assert np.array_equal(frame, defect_frame((120, 160)))
    with pytest.raises(UniadError, match="overlay frame"):
        det(frame).overlay(frame[:10])


def test_thresholds_per_class_override_and_missing(model_path, tmp_path):
    frame = defect_frame()
    score = Detector(model_path)(frame).score
    assert Detector(model_path, class_name="cable").threshold == 80.0
    assert Detector(model_path, class_name="bottle")(frame).normalized_score == pytest.approx(
        score / 20.0
    )
    assert Detector(model_path, threshold=1e6)(frame).verdict == "OK"
    with pytest.raises(UniadError, match="not one this model"):
        Detector(model_path, class_name="carpet")
    with pytest.raises(UniadError, match="> 0"):
        Detector(model_path, threshold=0)
    bare = tmp_path / "bare.onnx"
    build_model(bare, threshold=None)
    result = Detector(bare)(frame)
    assert result.threshold is None and result.is_anomalous is None and result.verdict is None
    assert result.overlay(frame).shape == frame.shape


def test_predict_batches_match_single_calls(det):
    frames = [good_frame(seed=i) for i in range(5)] + [defect_frame(seed=i) for i in range(6)]
    batch = det.predict(frames)
    single = [det(f) for f in frames]
    assert [r.verdict for r in batch] == ["OK"] * 5 + ["NG"] * 6
    assert [r.score for r in batch] == pytest.approx([r.score for r in single], rel=1e-5)
    assert det.predict([]) == []
    assert len(det.predict(np.stack(frames))) == 11


def test_static_batch_is_padded(tmp_path):
    path = tmp_path / "static.onnx"
    build_model(path, batch=4)
    det = Detector(path)
    assert det.static_batch == 4
    frames = [good_frame(seed=1), defect_frame(seed=2)] * 3
    assert [r.verdict for r in det.predict(frames)] == ["OK", "NG"] * 3
    assert det(defect_frame()).verdict == "NG"


def test_grey_bgra_and_16bit_frames_are_converted(det, model_path):
    bgr = defect_frame()
    grey = bgr[:, :, 1].copy()
    expect_grey = det(np.dstack([grey] * 3)).score
    assert det(grey).score == pytest.approx(expect_grey)
    assert det(grey[:, :, None]).score == pytest.approx(expect_grey)
    bgra = np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)])
    assert det(bgra).score == pytest.approx(det(bgr).score)
    deep = bgr.astype(np.uint16) << 4  # a 12-bit sensor
    with pytest.raises(UniadError, match="bit_depth"):
        det(deep)
    twelve = Detector(model_path, bit_depth=12)
    assert twelve(deep).score == pytest.approx(det(bgr).score)
    with pytest.raises(UniadError, match="9..16"):
        Detector(model_path, bit_depth=8)
    with pytest.raises(UniadError, match="values above"):
        Detector(model_path, bit_depth=10)(deep)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((48, 64, 3), np.float32), "dtype float32"),
        (np.zeros((48, 64, 3), np.int8), "dtype int8"),
        (np.zeros((48, 64, 3), bool), "dtype bool"),
        (np.zeros((2, 48, 64, 3), np.uint8), "not an image"),
        (np.zeros((48, 64, 2), np.uint8), "not an image"),
        (np.zeros((0, 64, 3), np.uint8), "empty"),
        (None, "None"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_frames_are_refused(det, frame, message):
    with pytest.raises(UniadError, match=message):
        det(frame)
