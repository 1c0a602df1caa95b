"""Issue 28 item 6: a line runs for months. The JSONL log follows logrotate (a moved log is
noticed, SIGHUP reopens) and rotates itself by size; NG evidence is kept within
`--keep-evidence` (count, age, size) as it is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from cli_helpers import end, run_main
from onnx_fixtures import build_model, defect_frame
from runtime_helpers import write_folder
from serve_helpers import png, serve_process

from uniad_edge.errors import UniadError
from uniad_edge.runtime.recorder import FRAME_SUFFIX, OVERLAY_SUFFIX, EvidenceSaver, JsonlLog
from uniad_edge.runtime.retention import Retention, parse_retention

ROOT = Path(__file__).resolve().parents[1]
CLI = "from uniad_edge.cli import main; main()"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rotation") / "m.onnx"
    build_model(path, threshold=1e-6)  # every frame NG: evidence for each
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_moved_log_is_noticed_and_records_start_the_file_again(tmp_path):
    path = tmp_path / "line.jsonl"
    log = JsonlLog(path)
    log.write({"n": 0})
    os.replace(path, tmp_path / "line.jsonl.1")  # logrotate without postrotate, or `mv`
    log.write({"n": 1})
    log.write({"n": 2})
    os.unlink(path)  # removed: started again too
    log.write({"n": 3})
    log.close()
    assert lines(tmp_path / "line.jsonl.1") == [{"n": 0}]
    assert lines(path) == [{"n": 3}] and log.reopened == 2


def test_reopen_starts_the_file_at_its_path_again(tmp_path):
    path = tmp_path / "line.jsonl"
    log = JsonlLog(path)
    log.write({"n": 0})
    os.link(path, tmp_path / "kept.jsonl")  # the path still names the open file
    log.reopen()  # what SIGHUP calls: the next record reopens
    log.write({"n": 1})
    log.close()
    assert log.reopened == 1 and lines(path) == [{"n": 0}, {"n": 1}]


def test_size_rotation_keeps_n_files_each_under_the_limit_and_loses_no_newer_record(tmp_path):
    path = tmp_path / "line.jsonl"
    log = JsonlLog(path, max_bytes=400, keep=2)
    for n in range(60):
        log.write({"n": n, "pad": "x" * 20})
    log.close()
    files = [path, tmp_path / "line.jsonl.1", tmp_path / "line.jsonl.2"]
    assert not (tmp_path / "line.jsonl.3").exists()
    assert all(0 < f.stat().st_size <= 400 for f in files)
    kept = [r["n"] for f in reversed(files) for r in lines(f)]
    assert kept == list(range(60 - len(kept), 60)) and len(kept) > 20


def test_run_reopens_its_log_on_sighup(model, tmp_path):
    """The CLI wires SIGHUP to the sinks' reopen (besides the model reload)."""
    folder = write_folder(tmp_path / "frames", good=3, bad=0)
    log = tmp_path / "line.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    command = [sys.executable, "-c", CLI, "run", "--model", str(model), "--source", str(folder),
               "--trigger", "stdin", "--log", str(log)]  # fmt: skip
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"P1\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 120
        while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.link(log, tmp_path / "line.jsonl.hup")  # same inode at the path: only SIGHUP reopens
        proc.send_signal(signal.SIGHUP)
        while "model_changed" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        out, err = proc.communicate(b"P2\n", timeout=120)
    finally:
        end(proc)
    assert proc.returncode == 0, err.decode()
    assert [r.get("part_id") for r in lines(log) if "event" not in r] == ["P1", "P2"]
    row = next(line for line in out.decode().splitlines() if "log reopened" in line)
    assert row.split()[-2] == "1", row


def save(saver: EvidenceSaver, n: int) -> dict[str, str]:
    image = np.full((16, 16, 3), n, np.uint8)
    detection = type("Overlay", (), {"overlay": lambda self, im: im})()  # all save() reads
    return saver.save(f"top_{n:04d}", detection, image)


def pairs(folder: Path) -> list[str]:
    frames = sorted(p.name[: -len(FRAME_SUFFIX)] for p in folder.glob("*" + FRAME_SUFFIX))
    overlays = sorted(p.name[: -len(OVERLAY_SUFFIX)] for p in folder.glob("*" + OVERLAY_SUFFIX))
    assert frames == overlays  # never half a pair
    return frames


def test_evidence_is_kept_to_the_newest_count_including_what_was_there(tmp_path):
    folder = tmp_path / "ng"
    folder.mkdir()
    old = EvidenceSaver(folder)
    for n in range(4):
        save(old, n)
        past = time.time() - 100 + n
        for name in (f"top_{n:04d}{FRAME_SUFFIX}", f"top_{n:04d}{OVERLAY_SUFFIX}"):
            os.utime(folder / name, (past, past))
    (folder / "notes.txt").write_text("not evidence")
    saver = EvidenceSaver(folder, Retention(count=3))
    assert pairs(folder) == ["top_0001", "top_0002", "top_0003"]  # the oldest went at start
    for n in range(4, 9):
        save(saver, n)
    assert pairs(folder) == ["top_0006", "top_0007", "top_0008"]
    assert saver.removed == 6 and (folder / "notes.txt").exists()


def test_evidence_is_kept_by_age_and_by_size(tmp_path):
    folder = tmp_path / "ng"
    folder.mkdir()
    saver = EvidenceSaver(folder)
    for n in range(3):
        save(saver, n)
    past = time.time() - 7200
    for name in (f"top_0000{FRAME_SUFFIX}", f"top_0000{OVERLAY_SUFFIX}"):
        os.utime(folder / name, (past, past))
    EvidenceSaver(folder, parse_retention("1h"))
    assert pairs(folder) == ["top_0001", "top_0002"]
    pair = sum(p.stat().st_size for p in folder.glob("top_0001*"))
    by_size = EvidenceSaver(folder, Retention(size_bytes=int(pair * 2.5)))
    save(by_size, 3)
    save(by_size, 4)
    assert pairs(folder) == ["top_0003", "top_0004"]


def test_run_keeps_evidence_within_keep_evidence(model, tmp_path):
    folder = write_folder(tmp_path / "frames", good=0, bad=6)
    ng = tmp_path / "ng"
    code = run_main("run", "--model", model, "--source", folder, "--save-dir", ng,
                    "--keep-evidence", "2", "--log", tmp_path / "l.jsonl")  # fmt: skip
    assert code == 0
    assert len(pairs(ng)) == 2
    saved = [r["evidence"]["frame"] for r in lines(tmp_path / "l.jsonl")]
    assert sorted(p.name for p in ng.glob("*" + FRAME_SUFFIX)) == sorted(saved[-2:])


@pytest.mark.parametrize(
    ("text", "want"),
    [("5000", Retention(count=5000)), ("30d", Retention(age_s=30 * 86400.0)),
     ("20GB", Retention(size_bytes=20 * 10**9)),
     ("100, 2h, 1.5MB", Retention(count=100, age_s=7200.0, size_bytes=1_500_000))],
)  # fmt: skip
def test_keep_evidence_reads_counts_ages_and_sizes(text, want):
    assert parse_retention(text) == want


@pytest.mark.parametrize("text", ["", "ten", "5x", "0", "3d,4d", "-1"])
def test_a_bad_keep_evidence_is_a_one_line_error_before_anything_runs(model, text, capsys):
    with pytest.raises(UniadError, match="--keep-evidence"):
        parse_retention(text)
    code = run_main("run", "--model", model, "--camera", 97, "--keep-evidence", text)
    assert code == 2 and "--keep-evidence" in capsys.readouterr().err


def test_serve_rotates_its_log_and_keeps_evidence_as_run_does(model, tmp_path):
    """`serve` runs for months too: the same three options, through its own command line."""
    log, ng = tmp_path / "l.jsonl", tmp_path / "ng"
    args = ("--model", model, "--log", log, "--log-max-mb", "0.001", "--log-keep", "2",
            "--save-dir", ng, "--keep-evidence", "2")  # fmt: skip
    with serve_process(tmp_path, *args) as served:
        for seed in range(6):
            reply = httpx.post(f"{served.url}/v1/score", content=png(defect_frame(seed=seed)),
                               headers={"content-type": "image/png"}, timeout=30)  # fmt: skip
            assert reply.status_code == 200 and reply.json()["verdict"] == "NG"
    assert len(pairs(ng)) == 2
    rotated = sorted(p.name for p in tmp_path.glob("l.jsonl*"))
    assert rotated == ["l.jsonl", "l.jsonl.1", "l.jsonl.2"]  # at most --log-keep old ones
    assert all(p.stat().st_size < 4096 for p in tmp_path.glob("l.jsonl*"))
