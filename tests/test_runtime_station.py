"""The station API: several cameras batched on one detector, triggers, latest, subscribers,
states, ROI, per-camera thresholds, records with unique names, error records."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_fixtures import build_model, good_frame
from runtime_helpers import FRAME_SIZE, Conveyor, write_folder, write_video

from uniad_edge.errors import UniadError
from uniad_edge.runtime.detector import Detector
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig
from uniad_edge.runtime.station.file import load_station_file


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    build_model(path, threshold=40.0, per_class={"tile": 1e6, "wood": 40.0})
    return path


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class CountingDetector(Detector):
    """The real detector, remembering the size of every batch it scored."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    def score(self, frames):
        frames = list(frames)
        self.batches.append(len(frames))
        return super().score(frames)


def test_several_videos_batched_with_camera_names_and_own_thresholds(model, tmp_path):
    a = write_video(tmp_path / "a.mp4", good=10, bad=10)
    b = write_video(tmp_path / "b.avi", good=15, bad=0, fourcc="MJPG")
    log = tmp_path / "r.jsonl"
    config = StationConfig(
        cameras=[CameraConfig("a", str(a), class_name="wood"), CameraConfig("b", str(b))],
        model=model,
        log=log,
        save_dir=tmp_path / "ng",
        name="line1",
    )
    detector = CountingDetector(model, max_batch=config.max_batch)
    with Station(config, detector) as station:
        summary = station.run()
    records = read_log(log)
    by_camera = {name: [r for r in records if r["camera"] == name] for name in ("a", "b")}
    assert [r["index"] for r in by_camera["a"]] == list(range(20))
    assert [r["index"] for r in by_camera["b"]] == list(range(15))
    assert {r["station"] for r in records} == {"line1"} and {r["model"] for r in records} == {
        "fixture"
    }
    assert len({(r["camera"], r["name"]) for r in records}) == 35  # names are unique
    assert by_camera["a"][0]["name"].startswith("00000000@")
    verdicts_a = [r["verdict"] for r in by_camera["a"]]
    assert verdicts_a[:10].count("NG") <= 1 and verdicts_a[10:].count("NG") >= 9
    assert {r["verdict"] for r in by_camera["b"]} == {"OK"}
    # frames of both cameras went through the detector together
    assert max(detector.batches) == 2 and sum(detector.batches) == 35
    assert summary.frames == 35 and summary.ng == verdicts_a.count("NG")
    assert summary.cameras["a"].frames == 20 and summary.states["b"].status == "ended"
    assert (summary.states["a"].class_name, summary.states["a"].threshold) == ("wood", 40.0)
    saved = sorted(p.name for p in (tmp_path / "ng").glob("*_frame.png"))
    assert len(saved) == summary.ng and all(name.startswith("a_") for name in saved)
    detector.close()


def test_roi_is_cropped_before_scoring_and_a_bad_roi_is_an_error_record(model, tmp_path):
    h, w = FRAME_SIZE
    folder = tmp_path / "imgs"
    folder.mkdir()
    frame = good_frame(FRAME_SIZE)
    cv2.circle(frame, (w - 6, h - 6), 5, (250, 250, 250), -1)  # a defect outside the ROI
    cv2.imwrite(str(folder / "p.png"), frame)
    config = StationConfig(
        cameras=[
            CameraConfig("full", str(folder)),
            CameraConfig("crop", str(folder), roi=(0, 0, w // 2, h // 2), save="all"),
            CameraConfig("wrong", str(folder), roi=(0, 0, w + 1, h)),
        ],
        model=model,
        save_dir=tmp_path / "ev",
    )
    seen = []
    with Station(config) as station:
        station.subscribe(seen.append)
        station.run()
    verdicts = {v.camera: v for v in seen}
    assert verdicts["full"].record["verdict"] == "NG"
    assert verdicts["crop"].record["verdict"] == "OK"
    assert verdicts["crop"].image.shape == (h // 2, w // 2, 3)
    assert "does not fit" in verdicts["wrong"].record["error"]
    assert verdicts["wrong"].record["verdict"] == "ERROR"
    assert verdicts["wrong"].record["is_ok"] is False
    evidence = verdicts["crop"].evidence
    assert evidence["frame"] == verdicts["crop"].evidence_stem + "_frame.png"
    kept = cv2.imread(str(tmp_path / "ev" / evidence["frame"]))
    assert kept.shape == (h // 2, w // 2, 3)  # save="all" keeps OK frames too, as scored


def test_triggered_station_scores_only_on_trigger_with_part_id(model, tmp_path):
    camera = Conveyor()
    log = tmp_path / "t.jsonl"
    config = StationConfig(
        cameras=[CameraConfig("top", camera)], model=model, log=log, trigger_only=True
    )
    station = Station(config).start()
    try:
        time.sleep(0.2)
        frame, verdict = station.latest("top")
        assert frame is not None and verdict is None  # preview only: nothing scored untriggered
        before = time.time()
        first = station.trigger("top", part_id="P-1", timeout=10)
        camera.defective = True
        time.sleep(0.05)
        second = station.trigger("top", part_id="P-2", timeout=10)
        assert first["part_id"] == "P-1" and first["verdict"] == "OK"
        assert second["part_id"] == "P-2" and second["verdict"] == "NG"
        assert first["timestamp"] >= before  # a frame captured after the trigger
        assert 0 < first["trigger_ms"] < 10_000
        _, latest = station.latest("top")
        assert latest is not None and latest.record is second
        state = station.state("top")
        assert state.status == "connected" and state.frames == 2 and state.ng == 1
        with pytest.raises(UniadError, match="no camera named 'side'"):
            station.trigger("side")
    finally:
        station.stop()
        summary = station.wait(10)
        station.close()
    assert summary is not None and summary.frames == 2
    assert [r["part_id"] for r in read_log(log)] == ["P-1", "P-2"]
    assert list(summary.cameras["top"].trigger_ms) == [first["trigger_ms"], second["trigger_ms"]]


def test_free_running_trigger_tags_the_next_frame_and_stop_ends_a_live_station(model):
    config = StationConfig(cameras=[CameraConfig("top", Conveyor())], model=model)
    station = Station(config).start()
    records = []
    station.subscribe(lambda v: records.append(v.record))
    record = station.trigger("top", part_id="X", timeout=10)
    assert record["part_id"] == "X" and record["verdict"] == "OK"
    threading.Timer(0.1, station.stop).start()
    summary = station.wait(10)
    station.close()
    assert summary is not None and summary.ended_by == "stop()"
    assert summary.frames >= len(records) > 1
    assert sum(r.get("part_id") == "X" for r in records) == 1


def test_unreadable_image_and_16_bit_frames(model, tmp_path, caplog):
    folder = write_folder(tmp_path / "imgs", good=1, bad=0)
    (folder / "b_broken.png").write_bytes(b"not a png")
    deep = (good_frame(FRAME_SIZE).astype(np.uint16) << 4) | 5  # 12-bit data in a 16-bit PNG
    cv2.imwrite(str(folder / "c_twelve_bit.png"), deep)
    log = tmp_path / "r.jsonl"
    config = StationConfig(cameras=[CameraConfig("c", str(folder))], model=model, log=log)
    with Station(config) as station:
        station.run()
    records = read_log(log)
    assert [r["name"] for r in records] == ["a_good_000.png", "b_broken.png", "c_twelve_bit.png"]
    assert "cannot read image" in records[1]["error"] and records[1]["verdict"] == "ERROR"
    assert records[2]["verdict"] == "NG"  # read as 8 bits by its top byte: nearly black
    assert "pass --bit-depth 12" in caplog.text
    caplog.clear()
    config = StationConfig(
        cameras=[CameraConfig("c", str(folder / "c_*.png"))], model=model, log=log, bit_depth=12
    )
    with Station(config) as station:
        station.run()
    assert read_log(log)[-1]["verdict"] == "OK" and "bit-depth" not in caplog.text


def test_station_file(model, tmp_path):
    video = write_video(tmp_path / "v.mp4", good=3, bad=0)
    (tmp_path / "station.toml").write_text(
        f"""
name = "line7"
model = "{model}"
log = "out/r.jsonl"

[cameras.left]
source = "v.mp4"
class_name = "tile"
roi = [0, 0, 32, 32]
save = "none"

[cameras.right]
source = "{video}"
threshold = 1e-3
"""
    )
    config = load_station_file(tmp_path / "station.toml", max_frames=4)
    assert config.name == "line7" and config.max_frames == 4
    assert config.log == (tmp_path / "out" / "r.jsonl").resolve()
    assert [c.name for c in config.cameras] == ["left", "right"]
    assert config.cameras[0].source == str(tmp_path / "v.mp4")
    assert config.cameras[0].roi == (0, 0, 32, 32) and config.cameras[0].save == "none"
    with Station(config) as station:
        summary = station.run()
    records = read_log(config.log)
    assert len(records) == summary.frames == 4
    assert {r["threshold"] for r in records if r["camera"] == "right"} == {1e-3}
    assert {r["threshold"] for r in records if r["camera"] == "left"} == {1e6}
    (tmp_path / "bad.toml").write_text('[cameras.x]\nsource = "v.mp4"\ncolour = "red"\n')
    with pytest.raises(UniadError, match=r"bad.toml: \[cameras.x\] has unknown keys colour"):
        load_station_file(tmp_path / "bad.toml")


@pytest.mark.parametrize(
    ("cameras", "message"),
    [
        ([], "at least one camera"),
        ([CameraConfig("a", "x"), CameraConfig("a", "y")], "repeated: a"),
    ],
)
def test_config_errors(cameras, message):
    with pytest.raises(UniadError, match=message):
        StationConfig(cameras=cameras).require_cameras()


def test_camera_config_errors():
    with pytest.raises(UniadError, match="save must be one of"):
        CameraConfig("a", "x", save="some")
    with pytest.raises(UniadError, match="roi must be"):
        CameraConfig("a", "x", roi=(0, 0, 0, 5))
    with pytest.raises(UniadError, match="letters, digits, '-' or '_'"):
        CameraConfig("a b", "x")


def test_unknown_class_fails_before_any_camera_opens(model, tmp_path):
    config = StationConfig(
        cameras=[CameraConfig("a", "nowhere.mp4", class_name="nope")], model=model
    )
    with pytest.raises(UniadError, match="class 'nope' is not one"):
        Station(config)


def test_more_cameras_than_the_batch_are_all_served(model, tmp_path):
    folders = [write_folder(tmp_path / f"f{i}", good=4, bad=0) for i in range(3)]
    cameras = [CameraConfig(f"c{i}", str(folder)) for i, folder in enumerate(folders)]
    config = StationConfig(cameras=cameras, model=model, max_batch=2)
    detector = CountingDetector(model, max_batch=2)
    with Station(config, detector) as station:
        summary = station.run()
    assert max(detector.batches) == 2 and sum(detector.batches) == 12
    assert {name: s.frames for name, s in summary.cameras.items()} == {"c0": 4, "c1": 4, "c2": 4}
    detector.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mqtt": "http://broker/line"}, "is not mqtt://host"),
        ({"mqtt": "mqtt://broker:1883/"}, "is not mqtt://host"),
        ({"mqtt": "mqtt://broker/line/#"}, "wildcards"),
        ({"trigger": "serial"}, "use stdin or mqtt://"),
        ({"trigger": "mqtt://broker:x/t"}, "is not mqtt://host"),
    ],
)
def test_output_and_trigger_addresses_checked_up_front(options, message):
    with pytest.raises(UniadError, match=message):
        StationConfig(cameras=[CameraConfig("a", "x")], **options)
