"""Camera names are URL path segments, OPC UA node names and parts of file names: one that
cannot be all three is refused at start with the allowed characters (issue 28 item 8)."""

from __future__ import annotations

import httpx
import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model
from runtime_helpers import write_folder
from serve_helpers import running

from uniad_edge.errors import UniadError
from uniad_edge.runtime.station import CameraConfig, StationConfig

RULE = "1 to 64 letters, digits, '-' or '_'"


@pytest.mark.parametrize(
    "name", ["a/b", "top.Score", "", "a b", "tab\there", "caf\u00e9", "x" * 65, "../up", "a?b"]
)
def test_a_name_outside_the_rule_is_refused_with_the_rule(name):
    with pytest.raises(UniadError) as caught:
        CameraConfig(name, "frames/")
    assert RULE in str(caught.value) and "\n" not in str(caught.value)


def test_allowed_names_are_reachable_over_rest(tmp_path):
    model = tmp_path / "m.onnx"
    build_model(model)
    frames = str(write_folder(tmp_path / "frames", good=2, bad=0))
    cameras = {"Line-1_top": frames, "x" * 64: frames}
    with running(model, cameras, station={"trigger_only": True}) as srv:
        for name in cameras:
            r = httpx.post(f"{srv.url}/v1/cameras/{name}/trigger", timeout=30)
            assert r.status_code == 200 and r.json()["camera"] == name
            assert httpx.get(f"{srv.url}/v1/cameras/{name}/latest").status_code == 200


def test_a_station_file_with_colliding_names_is_refused_at_start(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    build_model(model)
    write_folder(tmp_path / "frames", good=1, bad=0)
    station = tmp_path / "station.toml"
    station.write_text(
        f'model = "{model}"\n'
        '[cameras.top]\nsource = "frames"\n'
        '[cameras."top.Score"]\nsource = "frames"\n'  # OPC UA: Cameras.top.Score twice
    )
    assert run_main("run", "--station", station) == 2
    err = capsys.readouterr().err
    assert "'top.Score' is not allowed" in err and RULE in err and "Traceback" not in err
    station.write_text(f'model = "{model}"\n[cameras."a/b"]\nsource = "frames"\n')
    assert run_main("serve", "--station", station) == 2
    err = capsys.readouterr().err
    assert "'a/b' is not allowed" in err and RULE in err


def test_a_camera_named_api_cannot_serve_beside_the_api():
    cameras = [CameraConfig("api", "frames/")]
    StationConfig(cameras=cameras)  # `run` has no API requests
    with pytest.raises(UniadError, match="taken by the HTTP API"):
        StationConfig(cameras=cameras, api_queue=8)
