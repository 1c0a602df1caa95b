"""A station on a bad day: a live HTTP camera that dies (each reconnect setting, exit codes),
a full disk (a real small tmpfs, and a writer that fails part-way), a log left with a partial
last line."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model
from runtime_helpers import write_folder
from service_helpers import MjpegCamera

from uniad_edge.runtime import recorder
from uniad_edge.runtime.capture import AUTO
from uniad_edge.runtime.recorder import JsonlLog
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    build_model(path, threshold=40.0)
    return path


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def camera():
    server = MjpegCamera()
    yield server
    server.stop()


def kill_after_frames(camera: MjpegCamera, log: Path, frames: int) -> None:
    import threading

    def watch() -> None:
        wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= frames)
        camera.stop()

    threading.Thread(target=watch, daemon=True).start()


@pytest.mark.parametrize("tries", ["0", "2"])
def test_dead_live_camera_gives_up_with_exit_3(model, camera, tmp_path, tries, caplog):
    log = tmp_path / "r.jsonl"
    kill_after_frames(camera, log, 5)
    started = time.monotonic()
    code = run_main(
        "run", "--model", model, "--source", f"cam={camera.url}", "--log", log,
        "--reconnect-tries", tries, "--reconnect-max-wait", "0.2",
    )  # fmt: skip
    assert code == 3
    assert len(read_log(log)) >= 5
    attempts = [r.message for r in caplog.records if "reconnecting in" in r.message]
    assert len(attempts) == int(tries)
    if tries == "2":
        assert "attempt 2/2" in attempts[-1]
    assert any("giving up after" in r.message for r in caplog.records)
    assert time.monotonic() - started < 30


def test_dead_live_camera_reconnects_forever_by_default(model, camera, tmp_path):
    config = StationConfig(
        cameras=[CameraConfig("cam", camera.url)], model=model, reconnect_max_wait=0.2
    )
    assert config.reconnect_tries == AUTO  # a URL: forever
    station = Station(config).start()
    try:
        wait_until(lambda: station.state("cam").frames >= 5)
        camera.stop()
        wait_until(lambda: station.state("cam").status == "reconnecting")
        time.sleep(1.0)  # several failed attempts: still not given up
        assert station.state("cam").status == "reconnecting"
        camera.start()
        wait_until(lambda: station.state("cam").status == "connected")
        frames = station.state("cam").frames
        wait_until(lambda: station.state("cam").frames >= frames + 5)
    finally:
        station.stop()
        summary = station.wait(20)
        station.close()
    assert summary is not None and summary.failed_cameras == []
    assert summary.states["cam"].reconnects == 1 and summary.ended_by == "stop()"


def test_live_camera_down_at_start_is_waited_for(model, camera, caplog):
    """A station that boots before its camera: it reconnects until the camera comes up."""
    camera.stop()  # not listening yet
    config = StationConfig(
        cameras=[CameraConfig("cam", camera.url)], model=model, reconnect_max_wait=0.2
    )
    station = Station(config).start()
    try:
        assert station.state("cam").status == "reconnecting"
        time.sleep(1.0)  # several failed attempts: still waiting, nothing scored
        assert station.state("cam").status == "reconnecting"
        assert station.state("cam").frames == 0
        camera.start()
        wait_until(lambda: station.state("cam").frames >= 5)
        assert station.state("cam").status == "connected"
    finally:
        station.stop()
        summary = station.wait(20)
        station.close()
    assert summary is not None and summary.failed_cameras == []
    assert summary.states["cam"].reconnects == 0  # it never dropped, it came up late
    at_start = [r for r in caplog.records if "retrying (reconnect tries: forever)" in r.message]
    assert len(at_start) == 1 and camera.url in at_start[0].message


def test_live_camera_down_at_start_gives_up_with_exit_3(model, camera, tmp_path, caplog):
    camera.stop()
    log = tmp_path / "r.jsonl"
    code = run_main(
        "run", "--model", model, "--source", f"cam={camera.url}", "--log", log,
        "--reconnect-tries", "1", "--reconnect-max-wait", "0.2",
    )  # fmt: skip
    assert code == 3
    assert not log.exists() or read_log(log) == []
    assert any("retrying (reconnect tries: 1)" in r.message for r in caplog.records)
    said = [r.message for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [m for m in said if "reconnecting in" in m], said  # said once at start: quiet
    assert "giving up after 1 reconnect attempts" in said[-1]
    assert any("giving up after 1" in r.message for r in caplog.records)


def test_missing_file_source_is_still_an_immediate_exit_2(model, tmp_path, capsys):
    missing = tmp_path / "nowhere.mp4"
    assert run_main("run", "--model", model, "--source", missing) == 2
    assert "nowhere.mp4" in capsys.readouterr().err


def test_video_file_never_reconnects_and_exits_0(model, tmp_path, caplog):
    folder = write_folder(tmp_path / "imgs", good=3, bad=0)
    assert run_main("run", "--model", model, "--source", folder, "--reconnect-tries", "5") == 0
    assert not [r for r in caplog.records if "reconnect" in r.message]


def test_partial_last_line_is_moved_aside_not_appended_to(model, tmp_path, caplog):
    log = tmp_path / "r.jsonl"
    good = json.dumps({"index": 0, "verdict": "OK"}) + "\n"
    log.write_text(good + good + '{"index": 2, "score": 3.1, "verd')
    folder = write_folder(tmp_path / "imgs", good=2, bad=0)
    assert run_main("run", "--model", model, "--source", folder, "--log", log) == 0
    records = read_log(log)  # every line is valid JSON again
    assert len(records) == 4 and records[:2] == [json.loads(good)] * 2
    aside = list(tmp_path.glob("r.jsonl.partial-*"))
    assert len(aside) == 1 and aside[0].read_text() == '{"index": 2, "score": 3.1, "verd'
    assert "partial record" in caplog.text
    assert JsonlLog(log).recovered is None  # a clean log is left alone


def test_write_failing_part_way_leaves_no_partial_line(tmp_path, monkeypatch):
    """A file that raises ENOSPC after a short write: the log is cut back to whole lines."""
    log = JsonlLog(tmp_path / "r.jsonl")
    log.write({"index": 0})
    real_write = os.write

    def short_then_full(fd: int, data: bytes) -> int:
        real_write(fd, data[:7])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(recorder.os, "write", short_then_full)
    with pytest.raises(OSError, match="No space"):
        log.write({"index": 1, "score": 2.0})
    monkeypatch.setattr(recorder.os, "write", real_write)
    log.write({"index": 2})
    log.close()
    assert read_log(tmp_path / "r.jsonl") == [{"index": 0}, {"index": 2}]


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_pauses_writing_and_scoring_goes_on(model, small_disk, tmp_path, caplog):
    folder = write_folder(tmp_path / "imgs", good=20, bad=40)
    log = small_disk / "r.jsonl"
    filler = small_disk / "filler"
    config = StationConfig(
        cameras=[CameraConfig("cam", str(folder), save="all")],
        model=model,
        log=log,
        save_dir=small_disk / "ng",
        write_retry_s=0.05,
    )
    seen = []
    with Station(config) as station:
        station.subscribe(lambda v: seen.append(v))
        # fill the disk before the first frame; free it after 20 verdicts
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)

        def free_space(verdict) -> None:
            time.sleep(0.005)  # pace the run so the writers' 0.05 s retry comes round
            if len(seen) == 20:
                filler.unlink()

        station.subscribe(free_space)
        summary = station.run()
    assert summary.frames == 60 and len(seen) == 60  # scoring never stopped
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # whole lines only
    not_written = summary.sinks["log records not written"]
    assert not_written > 0 and len(records) + not_written == 60
    assert len(records) > 0  # writing resumed once space was back
    not_saved = summary.sinks["images not saved"]
    assert not_saved > 0 and summary.sinks["images saved"] + not_saved == 60
    assert len(list((small_disk / "ng").glob("*_frame.png"))) == summary.sinks["images saved"]
    assert not list((small_disk / "ng").glob(".*"))  # no temp files left by failed writes
    pauses = [r for r in caplog.records if "paused, retrying" in r.message]
    assert len(pauses) == 2  # one warning per writer, not one per frame
