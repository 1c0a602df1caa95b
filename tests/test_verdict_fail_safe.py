"""Verdicts fail safe (issue 17 item 3) and are judged once (issue 18 item 2): a NaN score or
map, a backend error or a frame that could not be prepared is ERROR, never OK, in the Detector,
the station's JSONL, the MQTT payload (real Mosquitto) and the summary; a `Detection` is
immutable; `Thresholds.resolve` is the one threshold rule."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from onnx_fixtures import defect_frame, good_frame
from runtime_helpers import FRAME_SIZE
from service_helpers import Mosquitto, Subscriber
from verdict_helpers import SpoiledBackend, read_log, threshold_40_model

from uniad_edge.metadata import Thresholds
from uniad_edge.runtime.capture import Reader
from uniad_edge.runtime.detector import Detector
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig
from uniad_edge.runtime.verdict import judge


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return threshold_40_model(tmp_path_factory)


class Frames(Reader):
    """`count` frames as fast as they are taken, defective ones every other frame."""

    description = "frames"

    def __init__(self, count: int) -> None:
        self.count, self.sent = count, 0

    def open(self) -> None:
        pass

    def read(self):
        if self.sent >= self.count:
            return None
        self.sent += 1
        maker = defect_frame if self.sent % 2 else good_frame
        return maker(FRAME_SIZE, seed=self.sent), ""

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("spoil", "reason"), [("score", "non-finite score"), ("map", "map")])
def test_detector_gives_error_never_ok_for_non_finite_results(model, spoil, reason):
    with Detector(SpoiledBackend(model, spoil)) as detector:
        results = detector.predict([good_frame(FRAME_SIZE, seed=i) for i in range(3)])
    for result in results:
        assert result.verdict == "ERROR" and result.is_ok is False
        assert result.is_anomalous is True and reason in result.error
        assert result.normalized_score is None
    with Detector(model) as detector:
        good = detector(good_frame(FRAME_SIZE))
    assert good.verdict == "OK" and good.is_ok and good.error is None


def test_detection_is_immutable(model):
    with Detector(model) as detector:
        result = detector(good_frame(FRAME_SIZE))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.threshold = 1e-9  # type: ignore[misc]


def test_station_jsonl_mqtt_and_summary_say_error(model, tmp_path, caplog):
    broker = Mosquitto(tmp_path)
    try:
        subscriber = Subscriber(broker.port, "line/verdicts")
        log = tmp_path / "verdicts.jsonl"
        config = StationConfig(
            cameras=[CameraConfig("a", Frames(6)), CameraConfig("b", Frames(4))],
            log=log,
            mqtt=broker.url("line/verdicts"),
        )
        caplog.set_level(logging.WARNING, logger="uniad_edge.runtime.station")
        with Station(config, Detector(SpoiledBackend(model, "score"))) as station:
            summary = station.run()
        messages = subscriber.wait_for(10)
        subscriber.close()
    finally:
        broker.stop()
    records = read_log(log)
    assert len(records) == 10 and len(messages) == 10
    for record in records:
        assert record["verdict"] == "ERROR" and record["is_ok"] is False
        assert record["error"] == "non-finite score" and record["score"] is None
    for message in messages:
        assert message["verdict"] == "ERROR" and message["is_ok"] is False
        assert message["error"] == "non-finite score"
    assert summary.errors == 10 and summary.ok == 0 and summary.ng == 0
    assert summary.cameras["a"].errors == 6 and summary.cameras["b"].errors == 4
    warned = [r.getMessage() for r in caplog.records if "ERROR verdict" in r.getMessage()]
    assert len(warned) == 2 and {w.split(":")[0] for w in warned} == {"camera a", "camera b"}


def test_backend_error_is_an_error_verdict_and_the_station_goes_on(model, tmp_path):
    log = tmp_path / "verdicts.jsonl"
    config = StationConfig(cameras=[CameraConfig("a", Frames(5))], log=log)
    with Station(config, Detector(SpoiledBackend(model, "raise"))) as station:
        summary = station.run()
    records = read_log(log)
    assert [r["verdict"] for r in records] == ["ERROR"] * 5 and summary.errors == 5
    assert all("backend error: RuntimeError: CUDA error" in r["error"] for r in records)
    assert not any(r["is_ok"] for r in records)


def test_thresholds_resolve_is_the_one_rule():
    thresholds = Thresholds(global_=40.0, per_class={"bottle": 20.0})
    assert thresholds.resolve("bottle", None) == (20.0, "model, class bottle")
    assert thresholds.resolve("cable", None) == (40.0, "model, global")
    assert thresholds.resolve(None, None) == (40.0, "model, global")
    assert thresholds.resolve("bottle", 3.0) == (3.0, "given")
    assert Thresholds().resolve("bottle", None) == (None, "none")
    with pytest.raises(ValueError, match="finite and > 0"):
        thresholds.resolve(None, float("nan"))


def test_station_provenance_names_every_cameras_override(model, tmp_path):
    config = StationConfig(
        cameras=[
            CameraConfig("a", Frames(1), threshold=5.0),
            CameraConfig("b", Frames(1), threshold=7.0),
            CameraConfig("c", Frames(1)),
        ]
    )
    with Station(config, Detector(model)) as station:
        provenance = station.threshold_provenance
        summary = station.run()
    assert "a: threshold 5 given" in provenance and "b: threshold 7 given" in provenance
    assert "other cameras:" in provenance and summary.thresholds == provenance


@pytest.mark.parametrize(
    ("score", "threshold", "error", "verdict"),
    [
        (1.0, 2.0, None, "OK"),
        (2.0, 2.0, None, "NG"),  # the boundary is NG
        (1.0, None, None, None),  # no threshold: unscored, never a guess
        (float("nan"), 2.0, None, "ERROR"),
        (float("inf"), None, None, "ERROR"),  # untrusted even without a threshold
        (1.0, 2.0, "frame is 16-bit", "ERROR"),
    ],
)
def test_judge_is_the_one_fail_safe_rule(score, threshold, error, verdict) -> None:
    assert judge(score, threshold, error) == verdict
