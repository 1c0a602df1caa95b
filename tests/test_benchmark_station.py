"""The station benchmarks run, and their numbers follow from their own raw counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(name: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BENCHMARKS,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_multicam_reports_consistent_numbers(tmp_path):
    out = tmp_path / "multicam.json"
    text = run_script(
        "multicam.py", "--frames", "6", "--cameras", "2", "--seconds", "0.6", "--fps", "20",
        "--threads", "1", "--json", str(out),
    )  # fmt: skip
    data = json.loads(out.read_text())
    one, two = data["files"]
    assert (one["cameras"], one["frames"]) == (1, 6) and (two["cameras"], two["frames"]) == (2, 12)
    for row in data["files"] + data["live"]:
        assert row["images_per_s"] == pytest.approx(row["frames"] / row["elapsed_s"])
        assert sum(c["frames"] for c in row["per_camera"].values()) == row["frames"]
        for camera in row["per_camera"].values():
            assert 0 < camera["latency_p50_ms"] <= camera["latency_p99_ms"]
    ratio = two["images_per_s"] / one["images_per_s"]
    assert f"| 2 | 12 | {two['images_per_s']:.1f} | {ratio:.2f}x |" in text


def test_soak_runs_over_two_cameras():
    text = run_script("soak.py", "--frames", "600", "--threads", "1")
    assert "frames: 600 over 2 cameras (150 NG, 600 logged)" in text
    assert "growth:" in text
