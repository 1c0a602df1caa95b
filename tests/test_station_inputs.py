"""Bad station inputs end in one line naming the key or the file, never a traceback; a missing
local camera is an error within seconds; a truncated video says how much of it was scored
(issue 21 items 11, 15, 16, 17)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model
from runtime_helpers import write_video

from uniad_edge.runtime.capture import open_source


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    build_model(path, threshold=40.0)
    return path


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('max_batch = "8"', "max_batch must be an integer, got '8'"),
        ('reconnect_tries = "often"', "reconnect_tries must be a number, 'forever' or 'auto'"),
        ("cameras = 5", "cameras must be [cameras.NAME] tables, got 5"),
        ("model = 5", "model must be a string or a path, got 5"),
        ("log = 5", "log must be a string or a path, got 5"),
        ("max_frames = 0", "max_frames must be >= 1"),
        ("mqtt_drain_s = inf", "mqtt_drain_s must be an integer or a number, got inf"),
        ('[cameras.top]\nsource = "v.mkv"\nroi = "0,0,10,10"', "roi must be a list or a tuple"),
        ('[cameras.top]\nsource = "v.mkv"\nroi = ["a", 0, 10, 10]', "roi must be [x, y, width"),
        ("[cameras.top]\nsource = 12.5", "camera top: source must be a string or an integer"),
    ],
)
def test_wrong_types_in_a_station_file_are_one_line(model, tmp_path, capsys, setting, message):
    write_video(tmp_path / "v.mkv", good=2, bad=0, fourcc="MJPG")
    camera = "" if "cameras" in setting else '\n[cameras.top]\nsource = "v.mkv"\n'
    station = tmp_path / "station.toml"
    station.write_text(f"{setting}\n{camera}")
    assert run_main("run", "--station", station) == 2  # refused before any model is looked for
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3
    err = err.replace("\n", "")
    assert f"station file {station}" in err and message in err


def test_reconnect_forever_is_accepted_in_a_station_file(model, tmp_path):
    write_video(tmp_path / "v.mkv", good=2, bad=0, fourcc="MJPG")
    station = tmp_path / "station.toml"
    station.write_text('reconnect_tries = "forever"\n[cameras.top]\nsource = "v.mkv"\n')
    assert run_main("run", "--model", model, "--station", station) == 0


def test_missing_local_camera_gives_up_within_seconds_with_the_forever_hint(model, capsys, caplog):
    """Said once with the hint, retried quietly (several reopens in 10 s at 0.5 s), then the
    error with a non-zero exit and no summary table of zeros."""
    started = time.monotonic()
    code = run_main(
        "run", "--model", model, "--camera", 97, "--max-frames", 1, "--reconnect-max-wait", 0.5
    )  # fmt: skip
    assert code == 3
    assert time.monotonic() - started < 120  # the default is 10 s; generous for a busy machine
    assert "not up after 10 s" in caplog.text
    out, err = capsys.readouterr()
    assert "--reconnect-tries forever" in " ".join(err.split())
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 2, said  # could not be opened (with the hint); gave up
    assert "could not be opened" in said[0] and "v4l2-ctl" in said[0]
    assert "frames scored" not in out + err


def test_a_url_keeps_waiting_by_default():
    stream = open_source("rtsp://127.0.0.1:9/none", backoff_s=0.05, max_backoff_s=0.05)
    try:
        assert stream.patience_s is None and stream.max_reconnects is None
    finally:
        stream.stop()


def test_truncated_video_says_claimed_and_decoded_frames(model, tmp_path, caplog):
    video = write_video(tmp_path / "v.mkv", good=6, bad=6, fourcc="MJPG")
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    log = tmp_path / "r.jsonl"
    assert run_main("run", "--model", model, "--source", video, "--log", log) == 0
    scored = len(log.read_text().splitlines())
    assert 0 < scored < 12
    assert f"ended after {scored} of the 12 frames its container claims" in caplog.text


@pytest.mark.parametrize("option", ["--log", "--save-dir"])
def test_an_output_below_a_file_says_the_parent_is_a_file(model, tmp_path, capsys, option):
    video = write_video(tmp_path / "video.avi", good=1, bad=0, fourcc="MJPG")
    target = video / "out" / "log.jsonl"
    assert run_main("run", "--model", model, "--source", video, option, target) == 2
    assert f"{video} is a file, not a folder" in capsys.readouterr().err.replace("\n", "")


def test_stdin_part_ids_follow_the_one_rule(model, tmp_path):
    """Blank lines trigger nothing, a 200,000-character or control-character part id is
    refused (as the API refuses it), bytes that are not UTF-8 become U+FFFD, never lone
    surrogates that other JSON readers reject."""
    video = write_video(tmp_path / "v.mkv", good=8, bad=0, fourcc="MJPG")
    log = tmp_path / "r.jsonl"
    command = [
        sys.executable, "-c", "from uniad_edge.cli import main; main()", "run",
        "--model", str(model), "--source", str(video), "--trigger", "stdin", "--log", str(log),
    ]  # fmt: skip
    lines = b"\xff\xfeP1\n" + b"y" * 200_000 + b"\n\n   \nP\x01X\nP2\n"
    done = subprocess.run(command, input=lines, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [r["part_id"] for r in records] == ["\ufffd\ufffdP1", "P2"]
    err = done.stderr.decode()
    assert "at most 200" in err and "control character U+0001" in err
