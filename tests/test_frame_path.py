"""The frame path: frames prepared in place (by a pool when large), and full-resolution maps made
only where a sink needs them (NG evidence), once per frame."""

from __future__ import annotations

import json
import threading
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_fixtures import build_model
from runtime_helpers import FRAME_SIZE, write_video

from uniad_edge.runtime.detector import Detection, Detector
from uniad_edge.runtime.prepare import FramePreparer, fill_slot
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    build_model(path, threshold=40.0)
    return path


def camera_frames(count: int, hw=(720, 1280)) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return list(rng.integers(0, 256, (count, *hw, 3), dtype=np.uint8))


def test_a_pool_prepares_large_frames_in_place_exactly_as_one_thread_does():
    frames = camera_frames(6)
    serial = np.zeros((8, 224, 224, 3), np.uint8)
    pooled = np.zeros_like(serial)
    FramePreparer(workers=1).into(serial, frames)
    preparer = FramePreparer(workers=3)
    start = set(threading.enumerate())
    slots = [pooled[i] for i in range(8)]  # views: the buffer itself is filled, no new arrays
    preparer.into(pooled, frames)
    workers = [t for t in set(threading.enumerate()) - start if t.name.startswith("uniad-prepare")]
    preparer.close()
    assert workers, "six 1280x720 frames should be resized by the pool"
    np.testing.assert_array_equal(pooled, serial)
    assert not pooled[6:].any()  # slots past the frames are left alone
    for i, frame in enumerate(frames):
        expected = cv2.resize(frame, (224, 224), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(slots[i], expected)


def test_a_frame_at_the_input_size_is_copied_not_resized():
    slot = np.zeros((32, 32, 3), np.uint8)
    frame = camera_frames(1, (32, 32))[0]
    fill_slot(slot, frame)
    np.testing.assert_array_equal(slot, frame)


@pytest.fixture
def map_count(monkeypatch) -> dict[str, int]:
    """Counts full-resolution maps made (`Detection.anomaly_map` computed, not read from cache)."""
    count = {"maps": 0}
    compute = Detection.__dict__["anomaly_map"].func

    def counted(self: Detection) -> np.ndarray:
        count["maps"] += 1
        return compute(self)

    prop = cached_property(counted)
    prop.__set_name__(Detection, "anomaly_map")
    monkeypatch.setattr(Detection, "anomaly_map", prop)
    return count


def run(model: Path, video: Path, log: Path, save: Path | None) -> list[dict]:
    cameras = [CameraConfig("top", str(video))]
    config = StationConfig(cameras=cameras, model=model, log=log, save_dir=save)
    with Station(config) as station:
        station.run()
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_a_station_logging_only_makes_no_map(model, tmp_path, map_count):
    video = write_video(tmp_path / "line.mp4", good=3, bad=4)
    records = run(model, video, tmp_path / "run.jsonl", None)
    assert len(records) == 7 and sum(r["verdict"] == "NG" for r in records) >= 3
    assert map_count["maps"] == 0


def test_a_station_saving_evidence_makes_one_map_per_ng_frame(model, tmp_path, map_count):
    video = write_video(tmp_path / "line.mp4", good=3, bad=4)
    records = run(model, video, tmp_path / "run.jsonl", tmp_path / "ng")
    ng = [r for r in records if r["verdict"] == "NG"]
    assert len(ng) >= 3 and all("evidence" in r for r in ng)
    assert map_count["maps"] == len(ng)


def test_a_detection_resizes_its_map_once_to_the_frame(model, map_count):
    detection = Detector(model)(camera_frames(1, FRAME_SIZE)[0])
    first, overlay = detection.anomaly_map, detection.overlay(camera_frames(1, FRAME_SIZE)[0])
    assert first.shape == FRAME_SIZE and overlay.shape == (*FRAME_SIZE, 3)
    assert detection.anomaly_map is first and map_count["maps"] == 1
