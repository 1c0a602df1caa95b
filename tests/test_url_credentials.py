"""A password in a URL shows as `***` in every output: JSONL records, /v1/cameras, /v1/health,
/v1/events, /metrics, console lines and error messages, while the real URL still connects
(issue 28 item 2). The camera is a real HTTP MJPEG camera behind Basic authentication."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model
from ports import free_port
from serve_helpers import running
from service_helpers import MjpegCamera

from uniad_edge.errors import UniadError
from uniad_edge.redact import redact_url
from uniad_edge.runtime.backends.triton_backend import parse_url
from uniad_edge.runtime.opcua.config import OpcuaConfig
from uniad_edge.runtime.station import StationConfig
from uniad_edge.serve.service import model_label

SECRET = "secretpw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://user:secretpw@10.0.0.5/stream", "rtsp://***@10.0.0.5/stream"),
        ("http://admin:p@ss@cam:8080/s.mjpg", "http://***@cam:8080/s.mjpg"),  # "@" in it
        ("mqtt://u:pw@broker:1883/line1", "mqtt://***@broker:1883/line1"),
        ("grpc://token@triton:8001/uniad", "grpc://***@triton:8001/uniad"),
        (
            "camera 'rtsp://u:p@h/s' failed; rtsp://v:q@h/t",
            "camera 'rtsp://***@h/s' failed; rtsp://***@h/t",
        ),
        ("rtsp://10.0.0.5/stream", "rtsp://10.0.0.5/stream"),
        ("http://host/path?mail=a@b", "http://host/path?mail=a@b"),  # no user: kept
        ("/data/line@2/frames", "/data/line@2/frames"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("creds") / "m.onnx"
    build_model(path, threshold=40.0)
    return path


def test_a_camera_password_shows_nowhere_but_still_connects(model, tmp_path, caplog, capfd):
    camera = MjpegCamera(user="user", password=SECRET)
    log = tmp_path / "line.jsonl"
    caplog.set_level(logging.INFO)
    try:
        with (
            running(model, {"cam": camera.url}, log=log) as srv,
            httpx.Client(base_url=srv.url, timeout=30) as client,
        ):
            deadline = time.monotonic() + 30
            while not (log.exists() and log.read_text().count("\n") >= 3):
                assert time.monotonic() < deadline, "the camera never delivered frames"
                time.sleep(0.05)
            assert camera.authorized >= 1  # the real URL, with its password, connected
            outputs = {
                "/v1/cameras": client.get("/v1/cameras").text,
                "/v1/health": client.get("/v1/health").text,
                "/metrics": client.get("/metrics").text,
                "/v1/model": client.get("/v1/model").text,
            }
            with client.stream("GET", "/v1/events") as events:
                lines = []
                for line in events.iter_lines():
                    lines.append(line)
                    if sum(x.startswith("event: verdict") for x in lines) >= 2:
                        break
            outputs["/v1/events"] = "\n".join(lines)
            camera.stop()  # the camera goes away: the station warns and reconnects
            deadline = time.monotonic() + 30
            while "reconnect" not in caplog.text:
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
            camera.start()
            deadline = time.monotonic() + 30
            while client.get("/v1/cameras").json()["cameras"][0]["reconnects"] < 1:
                assert time.monotonic() < deadline, "the camera never came back"
                time.sleep(0.1)
    finally:
        camera.stop()
    shown = "http://***@127.0.0.1"
    sources = {json.loads(line)["source"] for line in log.read_text().splitlines()}
    assert sources == {f"{shown}:{camera.port}/stream.mjpg"}
    assert f'"source": "{shown}' in outputs["/v1/cameras"].replace('":"', '": "')
    assert shown in outputs["/v1/health"] and shown in outputs["/v1/events"]
    for where, text in outputs.items():
        assert SECRET not in text, where
    assert shown in caplog.text
    console = capfd.readouterr()
    for text in (caplog.text, console.out, console.err):
        assert SECRET not in text


def test_error_messages_never_echo_a_password(model, tmp_path, capfd, caplog):
    for url in (f"mqtt://user:{SECRET}@broker/line/+", f"mqtt://user:{SECRET}@broker:99999/t"):
        with pytest.raises(UniadError) as caught:
            StationConfig(mqtt=url)
        assert SECRET not in str(caught.value) and "mqtt://***@broker" in str(caught.value)
    with pytest.raises(UniadError) as caught:
        parse_url(f"grpc://user:{SECRET}@triton:port/uniad")
    assert SECRET not in str(caught.value) and "grpc://***@triton" in str(caught.value)
    assert model_label(f"grpc://user:{SECRET}@triton:8001/uniad") == "grpc://***@triton:8001/uniad"
    with pytest.raises(UniadError) as caught:
        OpcuaConfig(f"opc.tcp://plc:{SECRET}@127.0.0.1:4840/uniad")
    assert SECRET not in str(caught.value) and "--opcua-user" in str(caught.value)
    dead = f"http://user:{SECRET}@127.0.0.1:{free_port()}/stream.mjpg"
    code = run_main("run", "--model", model, "--source", f"cam={dead}", "--reconnect-tries", "0")
    out, err = capfd.readouterr()  # FFmpeg's own lines too
    assert code == 3 and "http://***@127.0.0.1" in caplog.text
    assert SECRET not in out + err + caplog.text
