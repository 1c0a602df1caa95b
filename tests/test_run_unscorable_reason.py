"""When no frame could be scored, `run` says why (the frames' error), not only that it failed:
an ROI outside the frame used to end with just 'no frame could be scored from VIDEO'."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model
from runtime_helpers import write_video


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    build_model(path, threshold=40.0)
    return path


def test_error_names_the_reason(model, tmp_path, capsys):
    video = write_video(tmp_path / "line.mp4", good=2, bad=1)
    station = tmp_path / "station.toml"
    station.write_text(
        f'model = "{model}"\n[cameras.top]\nsource = "{video}"\nroi = [0, 0, 5000, 10]\n'
    )
    assert run_main("run", "--station", station) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no frame could be scored" in err
    assert "roi [0, 0, 5000, 10] does not fit" in err
