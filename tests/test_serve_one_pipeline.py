"""One verdict pipeline (issue 18 item 2): serve's API requests are a camera-less input of the
station, scored in the same backend batches as the camera frames and written in one JSONL
schema; an untrusted result (NaN score) is ERROR in /v1/score, /metrics and the log (issue 17
item 3)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from onnx_fixtures import defect_frame, good_frame
from ports import held_socket
from prometheus_client.parser import text_string_to_metric_families
from runtime_helpers import FRAME_SIZE
from serve_helpers import png, running_gated
from verdict_helpers import SpoiledBackend, read_log, threshold_40_model

from uniad_edge.runtime.capture import Reader
from uniad_edge.runtime.detector import Detector
from uniad_edge.runtime.station import CameraConfig, StationConfig
from uniad_edge.serve.config import ServeConfig
from uniad_edge.serve.server import BackgroundServer, build_service

IMAGE_PNG = {"content-type": "image/png"}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return threshold_40_model(tmp_path_factory)


class HeldCamera(Reader):
    """One frame, delivered when the test releases it; `buffered` once the capture thread has
    put it in the stream's buffer (it is then asking for the next frame)."""

    description = "held camera"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.buffered = threading.Event()
        self.calls = 0

    def open(self) -> None:
        pass

    def read(self):
        self.calls += 1
        if self.calls > 1:
            self.buffered.set()
            return None
        assert self.release.wait(30), "the test never released the frame"
        return defect_frame(FRAME_SIZE, seed=3), ""

    def close(self) -> None:
        pass


def wait_until(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_api_requests_and_camera_frames_share_a_batch_and_a_schema(model, tmp_path):
    log = tmp_path / "verdicts.jsonl"
    camera = HeldCamera()
    station = StationConfig(cameras=[CameraConfig("top", camera)], log=log)
    with running_gated(model, station=station, log=log, max_batch=8) as (srv, backend):

        def post(seed: int) -> dict:
            image = png(good_frame((40, 56), seed=seed))
            r = httpx.post(f"{srv.url}/v1/score", content=image, headers=IMAGE_PNG, timeout=60)
            assert r.status_code == 200, r.text
            return r.json()

        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(post, 1)
            assert backend.entered.wait(20)  # request 1 holds the backend
            second = pool.submit(post, 2)
            health = f"{srv.url}/v1/health"
            wait_until(lambda: httpx.get(health).json()["queue_depth"] == 1, "request 2 to queue")
            camera.release.set()
            assert camera.buffered.wait(20)  # the camera's frame waits beside request 2
            backend.gate.set()
            answers = [first.result(), second.result()]
        cameras = f"{srv.url}/v1/cameras"
        wait_until(lambda: httpx.get(cameras).json()["cameras"][0]["frames"], "the camera")
    assert backend.batches == [1, 2]  # request 2 and the camera frame: one backend batch
    assert [a["verdict"] for a in answers] == ["OK", "OK"] and answers[0]["is_ok"] is True
    records = read_log(log)
    by_camera = {r["camera"]: r for r in records}
    assert sorted(r["camera"] for r in records) == ["api", "api", "top"]
    assert set(by_camera["api"]) == set(by_camera["top"])  # one schema for both inputs
    assert by_camera["top"]["verdict"] == "NG" and by_camera["api"]["source"] == "api request"
    assert by_camera["api"]["station"] == by_camera["top"]["station"] == "station"


def test_a_nan_score_is_error_in_score_metrics_and_log(model, tmp_path):
    log = tmp_path / "verdicts.jsonl"
    sock = held_socket()
    config = ServeConfig.from_options(model=model, port=sock.getsockname()[1], log=log)
    service = build_service(config, Detector(SpoiledBackend(model, "score")))
    with BackgroundServer(service, sock=sock) as srv, httpx.Client(base_url=srv.url) as client:
        for image in (good_frame(), defect_frame()):
            r = client.post("/v1/score", content=png(image), headers=IMAGE_PNG)
            assert r.status_code == 200, r.text
            answer = r.json()
            assert answer["verdict"] == "ERROR" and answer["is_ok"] is False
            assert answer["error"] == "non-finite score" and answer["score"] is None
        heat = client.post(
            "/v1/score", content=png(good_frame()), headers=IMAGE_PNG, params={"heatmap": True}
        )
        assert heat.json()["verdict"] == "ERROR" and heat.json()["heatmap_png"]
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(client.get("/metrics").text)
            for s in family.samples
        }
    api = (("camera", "api"),)
    assert samples[("uniad_errors_total", api)] == 3
    assert samples[("uniad_frames_scored_total", api)] == 3
    assert samples.get(("uniad_ng_total", api), 0) == 0
    records = read_log(log)
    assert [r["verdict"] for r in records] == ["ERROR"] * 3
    assert all(r["is_ok"] is False and r["error"] == "non-finite score" for r in records)
