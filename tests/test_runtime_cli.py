"""`uniad-edge run` end to end: real videos, folders, ONNX Runtime; logs, evidence, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import end, run_main
from onnx_fixtures import build_model, good_frame
from runtime_helpers import FRAME_SIZE, write_folder, write_video


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    build_model(path, threshold=40.0)
    return path


def run_cli(*args: object) -> int:
    """`uniad-edge run ARGS` in-process (main() maps UniadError to exit 2), return the code."""
    return run_main("run", *args)


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def ng_rates(records: list[dict], good: int) -> tuple[float, float]:
    verdicts = [r["verdict"] for r in records]
    return (verdicts[:good].count("NG") / good, verdicts[good:].count("NG") / (len(records) - good))


def test_video_scored_and_logged(model, tmp_path):
    video = write_video(tmp_path / "line.mp4", good=12, bad=12)
    log = tmp_path / "out.jsonl"
    saved = tmp_path / "ng"
    assert run_cli("--model", model, "--source", video, "--log", log, "--save-dir", saved) == 0
    records = read_log(log)
    assert [r["index"] for r in records] == list(range(24))
    good_ng, bad_ng = ng_rates(records, 12)
    assert bad_ng > good_ng and bad_ng >= 0.9 and good_ng <= 0.1
    first = records[0]
    assert first["source"] == str(video) and first["threshold"] == 40.0
    assert first["normalized_score"] == pytest.approx(first["score"] / 40.0)
    assert set(first["latency_ms"]) == {"capture", "preprocess", "inference", "postprocess"}
    ng = [r for r in records if r["verdict"] == "NG"]
    overlays = sorted(saved.glob("*_overlay.jpg"))
    assert len(overlays) == len(ng) == len(list(saved.glob("*_frame.png")))
    assert cv2.imread(str(overlays[0])).shape == (48, 64, 3)
    assert not list(saved.glob(".*"))  # no temp files left behind


def test_image_folder_with_class_threshold_and_max_frames(tmp_path):
    model = tmp_path / "m.onnx"
    build_model(model, threshold=40.0, per_class={"tile": 1e6})
    folder = write_folder(tmp_path / "imgs", good=5, bad=5)
    log = tmp_path / "out.jsonl"
    assert run_cli("--model", model, "--source", folder, "--log", log) == 0
    records = read_log(log)
    assert len(records) == 10 and records[0]["name"] == "a_good_000.png"
    assert ng_rates(records, 5) == (0.0, 1.0)
    args = ("--model", model, "--source", folder, "--log", log, "--class-name", "tile")
    assert run_cli(*args, "--max-frames", 3, "--threads", 1, "--providers", "cpu") == 0
    extra = read_log(log)[10:]  # the log is appended to
    assert len(extra) == 3 and {r["verdict"] for r in extra} == {"OK"}
    assert run_cli("--model", model, "--source", folder, "--log", log, "--threshold", 1e-3) == 0
    assert {r["verdict"] for r in read_log(log)[13:]} == {"NG"}


def test_source_dying_mid_stream_keeps_every_scored_frame(model, tmp_path):
    video = write_video(tmp_path / "v.avi", good=20, bad=20, fourcc="MJPG")
    data = video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 2 // 3])  # the file ends mid-frame, like a dead recorder
    readable = sum(1 for _ in iter(cv2.VideoCapture(str(cut)).read, (False, None)))
    log = tmp_path / "out.jsonl"
    assert run_cli("--model", model, "--source", cut, "--log", log) == 0
    records = read_log(log)
    assert 0 < len(records) < 40
    assert [r["index"] for r in records] == list(range(len(records)))
    assert len(records) >= readable - 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--source", "nowhere.mp4"), "not found"),
        ((), "give --camera N, --source"),
        (("--station", "nowhere.toml"), "station file nowhere.toml not found"),
    ],
)
def test_bad_sources_exit_2(model, capsys, args, message):
    assert run_cli("--model", model, *args) == 2
    assert message in capsys.readouterr().err


def test_missing_camera_is_retried_then_exits_3(model, capsys, caplog):
    assert run_cli("--model", model, "--camera", 97, "--reconnect-tries", 0) == 3
    assert "camera 97 could not be opened" in caplog.text
    assert "live source gave up" in capsys.readouterr().err


def test_unreadable_video_and_corrupt_model(model, tmp_path, capsys):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 2048)
    assert run_cli("--model", model, "--source", junk) == 2
    assert "cannot read video" in capsys.readouterr().err
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"garbage")
    folder = write_folder(tmp_path / "imgs", 1, 0)
    assert run_cli("--model", broken, "--source", folder) == 2
    assert "cannot load ONNX model" in capsys.readouterr().err


def test_unwritable_save_dir_fails_at_start(model, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("a regular file, so nothing can be created below it")
    log = tmp_path / "out.jsonl"
    folder = write_folder(tmp_path / "imgs", 1, 1)
    code = run_cli("--model", model, "--source", folder, "--save-dir", blocker / "ng", "--log", log)
    assert code == 2 and "cannot write" in capsys.readouterr().err
    assert not log.exists()
    assert run_cli("--model", model, "--source", folder, "--log", blocker / "x.jsonl") == 2


def test_show_without_display_is_a_clear_error(model, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    folder = write_folder(tmp_path / "imgs", 1, 0)
    assert run_cli("--model", model, "--source", folder, "--show") == 2
    assert "display" in capsys.readouterr().err


def test_default_model_missing_says_export(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    folder = write_folder(tmp_path / "imgs", 1, 0)
    assert run_cli("--source", folder) == 2
    assert "uniad-edge export" in capsys.readouterr().err
    build_model(tmp_path / "export" / "best.onnx")
    assert run_cli("--source", folder) == 0
    assert "best.onnx" in capsys.readouterr().err
    build_model(tmp_path / "export" / "model.onnx")
    assert run_cli("--source", folder) == 0
    assert "best.onnx" not in capsys.readouterr().err


SLOW_LIVE_RUN = """
import sys, time
sys.path.insert(0, {tests!r})
from onnx_fixtures import good_frame
from uniad_edge.cli import main
from uniad_edge.runtime.station import inputs
from uniad_edge.runtime.capture import Reader

class Endless(Reader):
    live, description = True, "endless camera"
    def open(self): pass
    def read(self):
        time.sleep(0.01)
        return good_frame(), ""
    def close(self): pass

inputs.make_reader = lambda source, bit_depth=None: Endless()
sys.argv = ["uniad-edge", "run", "--model", {model!r}, "--camera", "0", "--log", {log!r}]
main()
"""


def test_sigterm_drains_and_flushes_the_log(model, tmp_path):
    log = tmp_path / "out.jsonl"
    script = SLOW_LIVE_RUN.format(tests=str(Path(__file__).parent), model=str(model), log=str(log))
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not log.exists() or len(log.read_text()) < 2000):
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        end(proc)
    assert proc.returncode == 0, err
    records = read_log(log)
    assert "SIGTERM" in out
    scored = int(next(line for line in out.splitlines() if "frames scored" in line).split()[-2])
    assert scored == len(records) > 0


def test_bit_depth_for_12_bit_pngs(model, tmp_path, caplog):
    folder = tmp_path / "deep"
    folder.mkdir()
    cv2.imwrite(str(folder / "p.png"), good_frame(FRAME_SIZE).astype(np.uint16) << 4)
    log = tmp_path / "r.jsonl"
    assert run_cli("--model", model, "--source", folder, "--log", log) == 0
    assert read_log(log)[-1]["verdict"] == "NG"  # top byte only: a nearly black frame
    assert "pass --bit-depth 12" in caplog.text
    assert run_cli("--model", model, "--source", folder, "--log", log, "--bit-depth", 12) == 0
    assert read_log(log)[-1]["verdict"] == "OK"
    # a bit depth below the data's: an error record and exit 2, never a clipped score
    assert run_cli("--model", model, "--source", folder, "--log", log, "--bit-depth", 10) == 2
    assert "values above 1023" in read_log(log)[-1]["error"]


def test_source_names_parse(tmp_path, monkeypatch):
    from uniad_edge.cli.run import parse_sources

    monkeypatch.chdir(tmp_path)
    odd = Path("a=b.mp4")
    odd.write_bytes(b"")
    assert parse_sources(
        ["top=rtsp://cam/s?x=1", "rtsp://cam/s?x=1", "side=v4l2src device=/dev/video0 ! appsink",
         "videotestsrc pattern=ball ! appsink", str(odd), "left=0"],
        camera=2,
    ) == [
        ("camera2", 2),
        ("top", "rtsp://cam/s?x=1"),
        ("cam1", "rtsp://cam/s?x=1"),
        ("side", "v4l2src device=/dev/video0 ! appsink"),
        ("cam3", "videotestsrc pattern=ball ! appsink"),
        ("cam4", str(odd)),  # an existing file is a path even with "=" in its name
        ("left", "0"),
    ]  # fmt: skip
    assert parse_sources(["clip.mp4"], camera=None) == [("cam0", "clip.mp4")]
