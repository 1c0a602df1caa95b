"""NG evidence is never lost: every verdict's files get their own name (camera, UTC time, index),
a restarted station keeps the previous run's evidence in the same folder, a taken name is never
written over, and each log record names the files saved for it."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_fixtures import build_model, defect_frame
from runtime_helpers import FRAME_SIZE, write_video

from uniad_edge.fileio import write_bytes_new
from uniad_edge.runtime.detector import Detector
from uniad_edge.runtime.recorder import EvidenceSaver, evidence_stem
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    build_model(path, threshold=40.0)
    return path


def run_station(model: Path, video: Path, log: Path, save: Path):
    cameras = [CameraConfig(name, str(video)) for name in ("top", "side")]
    with Station(StationConfig(cameras=cameras, model=model, log=log, save_dir=save)) as station:
        return station.run()


def test_a_restarted_station_keeps_both_runs_evidence_and_the_log_names_it(model, tmp_path):
    video = write_video(tmp_path / "line.mp4", good=3, bad=4)
    log, save = tmp_path / "run.jsonl", tmp_path / "ng"
    first = run_station(model, video, log, save)
    kept = {path.name: path.read_bytes() for path in save.iterdir()}
    second = run_station(model, video, log, save)

    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 2 * 2 * 7  # two runs, two cameras, same frame indexes 0..6 each time
    ng = [r for r in records if r["verdict"] == "NG"]
    assert first.ng == second.ng >= 8 and len(ng) == first.ng + second.ng
    assert [r for r in records if "evidence" in r] == ng  # each NG record names its files
    names = [r["evidence"][kind] for r in ng for kind in ("frame", "overlay")]
    assert len(set(names)) == len(names) == 2 * len(ng)
    # both runs' files are all there, nothing else (no temporary files), the first run's intact
    assert sorted(path.name for path in save.iterdir()) == sorted(names)
    assert len(kept) == 2 * first.ng
    assert all((save / name).read_bytes() == data for name, data in kept.items())
    for record in ng:
        frame = cv2.imread(str(save / record["evidence"]["frame"]))
        overlay = cv2.imread(str(save / record["evidence"]["overlay"]))
        assert frame.shape == overlay.shape == (*FRAME_SIZE, 3)
        assert record["evidence"]["frame"].startswith(f"{record['camera']}_")
        assert record["evidence"]["frame"].endswith(f"_{record['index']:08d}_frame.png")
    for camera in ("top", "side"):  # a camera's names sort in capture order, across runs
        overlays = [r["evidence"]["overlay"] for r in ng if r["camera"] == camera]
        assert overlays == sorted(overlays)


def test_evidence_stem_is_filename_safe_and_carries_utc_time_and_index():
    assert evidence_stem("top", 1_700_000_000.0425, 7) == "top_20231114T221320.042Z_00000007"
    assert evidence_stem("cam 1/left:", 0.5, 12) == "cam_1_left__19700101T000000.500Z_00000012"
    assert evidence_stem("", 0.0, 0).startswith("camera_")


def test_a_taken_name_is_never_written_over(model, tmp_path):
    image = defect_frame(FRAME_SIZE, seed=1)
    with Detector(model) as detector:
        detection = detector.predict([image])[0]
    saver = EvidenceSaver(tmp_path)
    stem = evidence_stem("top", 1_700_000_000.0, 0)
    (tmp_path / f"{stem}_overlay.jpg").write_bytes(b"an older run's overlay")  # clock set back
    first = saver.save(stem, detection, image)
    second = saver.save(stem, detection, image)
    assert first == {"frame": f"{stem}-1_frame.png", "overlay": f"{stem}-1_overlay.jpg"}
    assert second == {"frame": f"{stem}-2_frame.png", "overlay": f"{stem}-2_overlay.jpg"}
    assert (tmp_path / f"{stem}_overlay.jpg").read_bytes() == b"an older run's overlay"
    assert not (tmp_path / f"{stem}_frame.png").exists()
    assert np.array_equal(cv2.imread(str(tmp_path / first["frame"])), image)  # PNG: lossless
    assert saver.saved == 2 and len(list(tmp_path.iterdir())) == 5


@pytest.mark.parametrize("hard_links", [True, False])
def test_write_bytes_new_refuses_an_existing_file(tmp_path, monkeypatch, hard_links):
    if not hard_links:  # a FAT USB stick or a network share: os.link is refused

        def no_link(*args, **kwargs):
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    target = tmp_path / "x_frame.png"
    write_bytes_new(target, b"first")
    with pytest.raises(FileExistsError):
        write_bytes_new(target, b"second")
    assert target.read_bytes() == b"first"
    assert [path.name for path in tmp_path.iterdir()] == ["x_frame.png"]  # no temporary left
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
