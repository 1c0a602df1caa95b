"""`uniad-edge serve` over real HTTP: a uvicorn server on a free 127.0.0.1 port, real ONNX
Runtime sessions, scores checked against the in-process Detector."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import httpx
import numpy as np
import pytest
from onnx_fixtures import build_model, defect_frame, good_frame
from prometheus_client.parser import text_string_to_metric_families
from runtime_helpers import write_video
from serve_helpers import png, running, running_gated
from service_helpers import MjpegCamera

from uniad_edge.errors import UniadError
from uniad_edge.runtime.capture import Reader
from uniad_edge.runtime.detector import Detector
from uniad_edge.runtime.station import CameraConfig, StationConfig
from uniad_edge.serve.app import STATIC
from uniad_edge.serve.config import ServeConfig, is_loopback

TOL = 1e-6
IMAGE_PNG = {"content-type": "image/png"}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "m.onnx"
    build_model(path, threshold=40.0, per_class={"bottle": 20.0, "cable": 80.0})
    return path


@pytest.fixture(scope="module")
def detector(model):
    with Detector(model) as det:
        yield det


def frame(i: int) -> np.ndarray:
    """A distinct frame per i: half good, half defective, several sizes."""
    size = (40 + i % 3 * 8, 56 + i % 5 * 4)
    return defect_frame(size, seed=i) if i % 2 else good_frame(size, seed=i)


def _metrics(client: httpx.Client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_score_single_multipart_heatmap_and_class(model, detector):
    bad, good = defect_frame((48, 64), 3), good_frame((50, 70), 4)
    with running(model) as srv, httpx.Client(base_url=srv.url) as client:
        r = client.post("/v1/score", content=png(bad), headers={"content-type": "image/png"})
        assert r.status_code == 200, r.text
        body = r.json()
        expected = detector(bad)
        assert abs(body["score"] - expected.score) <= TOL
        assert body["threshold"] == 40.0 and body["verdict"] == "NG" and body["model"] == "fixture"
        assert body["normalized_score"] == pytest.approx(expected.score / 40.0, abs=TOL)
        assert body["inference_ms"] >= 0 and body["class_name"] is None

        files = [("file", ("bad.png", png(bad), "image/png")), ("file", ("good.jpg", b"", ""))]
        ok, jpg = cv2.imencode(".jpg", good)
        files[1] = ("file", ("good.jpg", jpg.tobytes(), "image/jpeg"))
        r = client.post("/v1/score", files=files, params={"class_name": "cable"})
        results = r.json()["results"]
        assert [x["filename"] for x in results] == ["bad.png", "good.jpg"]
        assert all(x["threshold"] == 80.0 and x["class_name"] == "cable" for x in results)
        decoded = cv2.imdecode(jpg, cv2.IMREAD_COLOR)
        assert abs(results[1]["score"] - detector(decoded).score) <= TOL
        assert results[1]["verdict"] == "OK"

        r = client.post(
            "/v1/score",
            content=png(bad),
            params={"heatmap": "true"},
            headers={"content-type": "image/png"},
        )
        overlay = cv2.imdecode(
            np.frombuffer(base64.b64decode(r.json()["heatmap_png"]), np.uint8), 1
        )
        assert overlay.shape == bad.shape
        assert not np.array_equal(overlay, bad)  # blended with the heatmap
        r = client.post(
            "/v1/score",
            content=png(bad),
            params={"heatmap": "true", "class_name": "bottle"},
            headers={"content-type": "image/png", "accept": "image/png"},
        )
        assert r.headers["content-type"] == "image/png"
        assert r.headers["x-verdict"] == "NG" and float(r.headers["x-threshold"]) == 20.0
        assert cv2.imdecode(np.frombuffer(r.content, np.uint8), 1).shape == bad.shape

        r = client.post(
            "/v1/score",
            content=png(bad),
            params={"class_name": "nope"},
            headers={"content-type": "image/png"},
        )
        assert r.status_code == 400 and "bottle, cable" in r.json()["detail"]


def test_200_concurrent_requests_from_8_threads_equal_the_detector(model, detector):
    images = [frame(i) for i in range(200)]
    expected = [detector(image).score for image in images]
    with running(model, max_batch=8, queue_size=256) as srv:
        local = threading.local()

        def score(i: int) -> dict:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=srv.url, timeout=60)
            r = local.client.post(
                "/v1/score", content=png(images[i]), headers={"content-type": "image/png"}
            )
            assert r.status_code == 200, r.text
            return r.json()

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(score, range(200)))
        with httpx.Client(base_url=srv.url) as client:
            metrics = _metrics(client)
    for i, (answer, score_) in enumerate(zip(answers, expected, strict=True)):
        assert abs(answer["score"] - score_) <= TOL, i
        assert answer["verdict"] == ("NG" if score_ >= 40.0 else "OK"), i
    assert {a["verdict"] for a in answers} == {"OK", "NG"}
    # every image went through the batching worker exactly once
    assert metrics[("uniad_batch_size_sum", ())] == 200
    assert metrics[("uniad_frames_scored_total", (("camera", "api"),))] == 200


def test_batches_form_while_the_backend_is_busy_and_full_queue_answers_503(model, detector):
    images = [frame(i) for i in range(4)]
    with running_gated(model, queue_size=2, max_batch=8) as (srv, backend):

        def post(i: int) -> httpx.Response:
            return httpx.post(
                f"{srv.url}/v1/score",
                content=png(images[i]),
                headers={"content-type": "image/png"},
                timeout=60,
            )

        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(post, 0)
            assert backend.entered.wait(10)  # the worker holds request 0 on the backend
            queued = [pool.submit(post, i) for i in (1, 2)]
            deadline = time.monotonic() + 10
            while httpx.get(f"{srv.url}/v1/health").json()["queue_depth"] < 2:
                assert time.monotonic() < deadline, "requests 1 and 2 never queued"
                time.sleep(0.02)
            refused = post(3)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert "queue full" in refused.json()["detail"]
            backend.gate.set()
            answers = [first.result().json()] + [f.result().json() for f in queued]
        metrics = _metrics(httpx.Client(base_url=srv.url))
    assert backend.batches == [1, 2]  # the two queued requests ran as one batch
    for image, answer in zip(images, answers, strict=False):
        assert abs(answer["score"] - detector(image).score) <= TOL
    assert metrics[("uniad_queue_rejected_total", ())] == 1


def _video_frames(video) -> list[np.ndarray]:
    frames, cap = [], cv2.VideoCapture(str(video))
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    return frames


def _wait_scored(client: httpx.Client, camera: str, frames: int) -> None:
    """Until the camera's stream ended and its last frame's verdict reached the service."""
    deadline = time.monotonic() + 20
    while True:
        latest = client.get(f"/v1/cameras/{camera}/latest").json().get("verdict") or {}
        if latest.get("index") == frames - 1:
            break
        assert time.monotonic() < deadline, f"camera {camera} never scored {frames} frames"
        time.sleep(0.05)


def test_station_cameras_latest_health_model_metrics_gallery_and_log(model, detector, tmp_path):
    video = write_video(tmp_path / "line.mp4", good=5, bad=4)
    frames = _video_frames(video)
    verdicts = [detector(f).verdict for f in frames]
    save, log = tmp_path / "ng", tmp_path / "verdicts.jsonl"
    with (
        running(model, cameras={"top": str(video)}, save_dir=save, log=log) as srv,
        httpx.Client(base_url=srv.url) as client,
    ):
        _wait_scored(client, "top", len(frames))
        info = client.get("/v1/cameras").json()["cameras"][0]
        assert info["name"] == "top" and info["frames"] == len(frames) == 9
        assert info["ng"] == verdicts.count("NG") == 4 and info["healthy"]
        latest = client.get("/v1/cameras/top/latest").json()
        assert latest["frame_size"] == [48, 64]
        assert abs(latest["verdict"]["score"] - detector(frames[-1]).score) <= TOL
        jpeg = client.get("/v1/cameras/top/latest.jpg")
        assert cv2.imdecode(np.frombuffer(jpeg.content, np.uint8), 1).shape == (48, 64, 3)
        ended = client.post("/v1/cameras/top/trigger", params={"part_id": "P-1"})
        assert ended.status_code == 409 and "ended" in ended.json()["detail"]
        assert client.post("/v1/cameras/side/trigger").status_code == 404

        health = client.get("/v1/health").json()
        assert health["status"] == "ok" and health["model_loaded"] is True
        assert health["cameras"]["top"]["state"] == "ended"
        meta = client.get("/v1/model").json()
        assert meta["thresholds"]["per_class"] == {"bottle": 20.0, "cable": 80.0}
        assert meta["thresholds"]["provenance"] == "fixed"
        assert meta["threshold_in_use"] == {
            "value": 40.0,
            "class_name": None,
            "source": "model, global",
        }
        assert meta["camera_thresholds"] == {"top": {"value": 40.0, "class_name": None}}
        assert client.get("/openapi.json").json()["paths"]["/v1/score"]

        bad = defect_frame((30, 40), 5)
        api = client.post("/v1/score", content=png(bad), headers={"content-type": "image/png"})
        assert api.json()["verdict"] == "NG"
        m = _metrics(client)
        top = (("camera", "top"),)
        assert m[("uniad_frames_scored_total", top)] == 9
        assert m[("uniad_ng_total", top)] == 4
        assert m[("uniad_verdict_latency_seconds_count", top)] == 9
        assert m[("uniad_dropped_frames_total", top)] == 0
        assert m[("uniad_reconnects_total", top)] == 0
        assert m[("uniad_ng_total", (("camera", "api"),))] == 1
        assert ("uniad_queue_depth", ()) in m
        # one evidence sink saves camera and API NG frames alike: 4 of "top", 1 of "api"
        assert m[("uniad_station_outputs", (("what", "images saved"),))] == 5
        assert m[("uniad_station_outputs", (("what", "log records not written"),))] == 0

        gallery = client.get("/v1/gallery").json()["items"]
        assert [g["camera"] for g in gallery] == ["api"] + ["top"] * 4  # newest first
        for item in gallery:
            image = client.get(f"/v1/gallery/{item['gallery']}")
            assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        saved = client.get(f"/v1/gallery/{gallery[0]['frame']}")
        assert np.array_equal(cv2.imdecode(np.frombuffer(saved.content, np.uint8), 1), bad)
        saved = client.get(f"/v1/gallery/{gallery[1]['frame']}")
        assert np.array_equal(cv2.imdecode(np.frombuffer(saved.content, np.uint8), 1), frames[-1])

        (tmp_path / "secret.png").write_bytes(png(frames[0]))
        (save / "notes.txt").write_text("not an image")
        os.symlink(tmp_path / "secret.png", save / "link.png")
        for path in (
            "..%2Fsecret.png",
            "..%2F..%2F..%2Fetc%2Fpasswd",
            "%2Fetc%2Fpasswd",
            "top%2F..%2F..%2Fsecret.png",
            "notes.txt",
            "link.png",
            "missing.png",
        ):
            r = client.get(f"/v1/gallery/{path}")
            assert r.status_code == 404, (path, r.status_code)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["camera"] for r in records].count("top") == 9  # the station's log sink
    assert [r["camera"] for r in records].count("api") == 1  # the API's records, same file


def test_trigger_only_station_scores_the_next_frame_per_trigger(model, detector, tmp_path):
    video = write_video(tmp_path / "line.mp4", good=1, bad=5)
    frames = _video_frames(video)
    options = {"station": {"trigger_only": True}}
    with (
        running(model, cameras={"top": str(video)}, **options) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as client,
    ):
        assert client.get("/v1/cameras/top/latest").status_code == 404  # nothing scored yet
        for i, part in enumerate(("P-1", "P-2")):
            record = client.post("/v1/cameras/top/trigger", params={"part_id": part}).json()
            assert record["part_id"] == part and record["camera"] == "top"
            assert abs(record["score"] - detector(frames[i]).score) <= TOL
            assert record["verdict"] == ("OK", "NG")[i] and record["trigger_ms"] >= 0
        latest = client.get("/v1/cameras/top/latest").json()["verdict"]
        assert latest["part_id"] == "P-2"  # the trigger answers once the service recorded it
        assert latest["verdict"] == "NG" and latest["index"] == 1


def test_event_stream_and_mjpeg(model, detector, tmp_path):
    video = write_video(tmp_path / "line.mp4", good=2, bad=2)
    with (
        running(model, cameras={"top": str(video)}, mjpeg_fps=20) as srv,
        httpx.Client(base_url=srv.url, timeout=20) as client,
    ):
        with client.stream("GET", "/v1/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == "event: snapshot"
            snapshot = json.loads(next(lines)[len("data: ") :])
            assert "counters" in snapshot and "history" in snapshot
            bad = defect_frame((30, 30), 9)
            client.post("/v1/score", content=png(bad), headers={"content-type": "image/png"})
            for line in lines:
                if line.startswith("data: ") and '"camera": "api"' in line:
                    event = json.loads(line[len("data: ") :])
                    break
        assert abs(event["score"] - detector(bad).score) <= TOL and event["verdict"] == "NG"

        with client.stream("GET", "/v1/cameras/top/stream.mjpg") as stream:
            assert stream.headers["content-type"].startswith("multipart/x-mixed-replace")
            data = b""
            for chunk in stream.iter_bytes():  # one part per new verdict: read the first
                data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                if b"Content-Length: " in head and len(rest) >= int(head.split(b": ")[-1]):
                    break
            assert head.startswith(b"--frame") and b"image/jpeg" in head
            size = int(head.split(b"Content-Length: ")[1])
            jpeg = cv2.imdecode(np.frombuffer(rest[:size], np.uint8), 1)
            assert jpeg.shape == (48, 64, 3)


def test_bad_requests_get_clear_4xx_and_the_server_lives_on(model, detector):
    with running(model, max_upload_mb=0.05) as srv, httpx.Client(base_url=srv.url) as client:
        cases = [
            (
                {"content": b"\x89PNG garbage", "headers": {"content-type": "image/png"}},
                400,
                "not an 8- or 16-bit image OpenCV can decode",
            ),
            ({"content": b"", "headers": {"content-type": "image/png"}}, 400, "empty"),
            (
                {"content": b"hello", "headers": {"content-type": "text/plain"}},
                415,
                "text/plain is not supported",
            ),
            ({"content": b"hello"}, 415, "(none)"),
            (
                {"files": {"note": ("a.txt", b"not an image", "text/plain")}},
                400,
                "a.txt (12 bytes) is not an 8- or 16-bit image",
            ),
            ({"data": {"x": "1"}, "files": {}}, 415, "not supported"),
            (
                {"content": bytes(60_000), "headers": {"content-type": "image/png"}},
                413,
                "--max-upload-mb",
            ),
            (
                {"content": iter([bytes(20_000)] * 3), "headers": {"content-type": "image/png"}},
                413,
                "0.05 MB limit",
            ),
        ]
        for kwargs, status, reason in cases:
            r = client.post("/v1/score", **kwargs)
            assert r.status_code == status, (kwargs.get("headers"), r.status_code, r.text)
            assert reason in r.json()["detail"], r.text
        deep = (good_frame().astype(np.uint16) << 4) | 0xF  # a 12-bit sensor's 16-bit PNG
        r = client.post("/v1/score", content=png(deep), headers={"content-type": "image/png"})
        assert r.status_code == 400 and "bit_depth" in r.json()["detail"]
        r = client.post(
            "/v1/score",
            content=png(deep),
            params={"bit_depth": 12},
            headers={"content-type": "image/png"},
        )
        assert abs(r.json()["score"] - detector(good_frame()).score) <= TOL
        ok = client.post(
            "/v1/score", content=png(good_frame()), headers={"content-type": "image/png"}
        )
        assert ok.status_code == 200 and ok.json()["verdict"] == "OK"
        assert client.get("/v1/cameras/top/latest").status_code == 404


def test_token_on_every_api_call_query_token_only_for_streams(model):
    token = "s3cret-token"
    auth = {"Authorization": f"Bearer {token}"}
    with running(model, token=token) as srv, httpx.Client(base_url=srv.url) as client:
        image = {"content": png(good_frame()), "headers": {"content-type": "image/png"}}
        for path in ("/v1/health", "/v1/model", "/v1/cameras", "/v1/gallery", "/metrics"):
            assert client.get(path).status_code == 401, path
            assert (
                client.get(path, headers={"Authorization": "Bearer wrong-token"}).status_code == 401
            )
            assert client.get(path, headers=auth).status_code == 200, path
        r = client.post("/v1/score", **image)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert client.post("/v1/score", params={"token": token}, **image).status_code == 401
        assert (
            client.post(
                "/v1/score", content=image["content"], headers={**image["headers"], **auth}
            ).status_code
            == 200
        )
        with client.stream("GET", "/v1/events", params={"token": token}) as stream:
            assert stream.status_code == 200
        assert client.get("/v1/events").status_code == 401
        assert client.get("/v1/gallery/x.png", params={"token": "nope"}).status_code == 401
        page = client.get("/")  # the page itself holds no data; its requests carry the token
        assert page.status_code == 200 and "/static/app.js" in page.text
        assert "sessionStorage" in client.get("/static/app.js").text
        for name in ("index.html", "app.js", "style.css"):  # offline: nothing from elsewhere
            text = (STATIC / name).read_text()
            assert "://" not in text and "//cdn" not in text, name


def test_config_rules():
    model = "m.onnx"
    with pytest.raises(UniadError, match="--token"):
        ServeConfig.from_options(model=model, host="0.0.0.0")
    with pytest.raises(UniadError, match="--token"):
        ServeConfig.from_options(model=model, host="192.168.1.20")
    assert ServeConfig.from_options(model=model, host="0.0.0.0", token="long-enough").token
    assert ServeConfig.from_options(model=model, host="0.0.0.0", insecure=True).insecure
    with pytest.raises(UniadError, match="at least 8"):
        ServeConfig.from_options(model=model, token="short")
    assert ServeConfig.from_options(model=model).host == "127.0.0.1"
    assert ServeConfig.from_options(model=model, port=None).port == 8080
    assert is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("10.1.2.3") and not is_loopback("0.0.0.0")


def test_mjpeg_rate_is_capped_while_verdicts_come_faster(model, tmp_path):
    video = write_video(tmp_path / "line.mp4", good=150, bad=150)
    fps, seconds = 4.0, 1.5
    options = {"station": {"trigger_only": True}, "mjpeg_fps": fps}
    with (
        running(model, cameras={"top": str(video)}, **options) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as client,
    ):
        stop = threading.Event()
        triggered = []

        def trigger_fast() -> None:  # a verdict every few milliseconds
            with httpx.Client(base_url=srv.url, timeout=30) as triggers:
                while not stop.is_set() and len(triggered) < 250:
                    triggered.append(triggers.post("/v1/cameras/top/trigger").status_code)

        worker = threading.Thread(target=trigger_fast)
        worker.start()
        try:
            while not triggered:
                time.sleep(0.01)
            data, start = b"", time.monotonic()
            with client.stream("GET", "/v1/cameras/top/stream.mjpg") as stream:
                for chunk in stream.iter_bytes():
                    data += chunk
                    if time.monotonic() - start >= seconds:
                        break
        finally:
            stop.set()
            worker.join(30)
    parts = data.count(b"--frame\r\n")
    assert set(triggered) == {200}
    assert len(triggered) > parts  # verdicts came faster than the stream may show them
    assert 2 <= parts <= fps * seconds + 2, parts


def test_gallery_survives_a_restart(model, tmp_path):
    save = tmp_path / "ng"
    with running(model, save_dir=save) as srv:
        for seed in (1, 2):
            r = httpx.post(
                f"{srv.url}/v1/score",
                content=png(defect_frame(seed=seed)),
                headers={"content-type": "image/png"},
            )
            assert r.json()["verdict"] == "NG"
        before = [item["gallery"] for item in httpx.get(f"{srv.url}/v1/gallery").json()["items"]]
    assert len(before) == 2 and len(list(save.glob("*_frame.png"))) == 2
    with running(model, save_dir=save) as srv:
        items = httpx.get(f"{srv.url}/v1/gallery").json()["items"]
        assert sorted(item["gallery"] for item in items) == sorted(before)
        for item in items:
            for key in ("gallery", "frame"):
                assert httpx.get(f"{srv.url}/v1/gallery/{item[key]}").status_code == 200


def test_a_restarted_station_adds_to_the_gallery_keeping_both_runs(model, tmp_path):
    video = write_video(tmp_path / "line.mp4", good=2, bad=3)
    save, log = tmp_path / "ng", tmp_path / "verdicts.jsonl"
    galleries, latest = [], []
    for _ in range(2):  # the same video again: the frame indexes start at 0 again
        with (
            running(model, cameras={"top": str(video)}, save_dir=save, log=log) as srv,
            httpx.Client(base_url=srv.url) as client,
        ):
            _wait_scored(client, "top", 5)
            latest.append(client.get("/v1/cameras/top/latest").json()["verdict"])
            galleries.append(client.get("/v1/gallery").json()["items"])
            for item in galleries[-1]:
                for key in ("gallery", "frame"):
                    assert client.get(f"/v1/gallery/{item[key]}").status_code == 200
    records = [json.loads(line) for line in log.read_text().splitlines()]
    runs = [records[:5], records[5:]]
    overlays = [[r["evidence"]["overlay"] for r in run if r["verdict"] == "NG"] for run in runs]
    assert len(overlays[0]) == len(overlays[1]) == 3 and set(overlays[0]).isdisjoint(overlays[1])
    assert len(list(save.iterdir())) == 2 * 6  # frame + overlay per NG, both runs kept
    # the gallery shows the overlays the log names: this run's (newest first), then the last
    # run's found on disk at start
    assert [g["gallery"] for g in galleries[0]] == overlays[0][::-1]
    assert [g["gallery"] for g in galleries[1]] == overlays[1][::-1] + overlays[0][::-1]
    assert [g["camera"] for g in galleries[1]] == ["top"] * 3 + [None] * 3
    assert [v["gallery"] for v in latest] == [o[-1] for o in overlays]  # the last frame: NG


class DyingCamera(Reader):
    """A live camera that delivers a few frames, then its cable is pulled for good."""

    live = True
    description = "camera on a pulled cable"

    def __init__(self, frames: int) -> None:
        self.left = frames
        self.opened = 0

    def open(self) -> None:
        self.opened += 1
        if self.opened > 1:
            raise UniadError("camera gone")

    def read(self):
        if self.left == 0:
            return None
        self.left -= 1
        time.sleep(0.01)
        return good_frame(seed=self.left), ""

    def close(self) -> None:
        """Nothing to release."""


def side_state(health: httpx.Response) -> str | None:
    """The "side" camera's state in a /v1/health answer (absent until the station reports it)."""
    return health.json().get("cameras", {}).get("side", {}).get("state")


def test_health_degrades_when_a_live_camera_fails(model, tmp_path):
    video = write_video(tmp_path / "line.mp4", good=2, bad=0)
    cameras = [CameraConfig("top", str(video)), CameraConfig("side", DyingCamera(3))]
    station = StationConfig(cameras=cameras, reconnect_tries=1, reconnect_wait=0.01)
    with running(model, station=station) as srv, httpx.Client(base_url=srv.url) as client:
        deadline = time.monotonic() + 60  # a busy machine shows "reconnecting" first, for a while
        while side_state(health := client.get("/v1/health")) != "failed":
            assert time.monotonic() < deadline, health.json()
            time.sleep(0.05)
        body = health.json()
        assert health.status_code == 503 and body["status"] == "degraded"
        assert body["cameras"]["side"]["healthy"] is False
        assert body["cameras"]["top"]["healthy"] is True
        side = body["cameras"]["side"]
        assert side["frames"] + side["dropped"] == 3  # live: on a busy machine one may be dropped
        metrics = client.get("/metrics").text
        assert 'uniad_reconnects_total{camera="side"}' in metrics
        score = client.post("/v1/score", content=png(good_frame()), headers=IMAGE_PNG)
        assert score.status_code == 200  # scoring goes on


def test_a_camera_down_at_start_is_reconnecting_then_scores(model):
    camera = MjpegCamera()
    camera.stop()  # the service boots before its camera
    station = StationConfig(cameras=[CameraConfig("gate", camera.url)], reconnect_max_wait=0.2)
    try:
        with running(model, station=station) as srv, httpx.Client(base_url=srv.url) as client:
            health = client.get("/v1/health")
            assert health.status_code == 503, health.json()
            assert health.json()["cameras"]["gate"]["state"] == "reconnecting"
            assert health.json()["cameras"]["gate"]["healthy"] is False
            score = client.post("/v1/score", content=png(good_frame()), headers=IMAGE_PNG)
            assert score.status_code == 200  # the API scores while the camera is away
            camera.start()
            deadline = time.monotonic() + 20
            while (health := client.get("/v1/health")).json()["cameras"]["gate"]["frames"] < 3:
                assert time.monotonic() < deadline, health.json()
                time.sleep(0.05)
            assert health.status_code == 200
            assert health.json()["cameras"]["gate"]["state"] == "connected"
    finally:
        camera.stop()


def test_https_with_a_certificate(model, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
         "-out", str(cert)],
        capture_output=True,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr.decode()[-200:]}")
    with running(model, tls_cert=cert, tls_key=key, token="tls-token-1") as srv:
        assert srv.url.startswith("https://")
        trusted = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=srv.url, verify=trusted) as client:
            auth = {"Authorization": "Bearer tls-token-1"}
            r = client.post("/v1/score", content=png(good_frame()), headers={**IMAGE_PNG, **auth})
            assert r.status_code == 200 and r.json()["verdict"] == "OK"
        with pytest.raises(httpx.TransportError):  # plain HTTP on the same port is not served
            httpx.get(srv.url.replace("https://", "http://") + "/v1/health", timeout=5).json()
    with pytest.raises(UniadError, match="both"):
        ServeConfig.from_options(model=model, tls_cert=cert)
    with pytest.raises(UniadError, match="not found"):
        ServeConfig.from_options(model=model, tls_cert=cert, tls_key=tmp_path / "nope.pem")
