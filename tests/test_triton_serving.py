"""Issue 13: the Triton backend against a real tritonserver on 127.0.0.1.

One server per session (nvidia-pytriton's binary, Python backend running ONNX Runtime on the
repository `export --format triton --triton-backend python` writes for the fixture graph). Its
maps and scores must equal the local ONNX Runtime backend's, its metadata must come from the
server alone, and a server that is down or restarts must give one line or reconnect.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import replace

import cv2
import httpx
import numpy as np
import pytest
from cli_helpers import run_main
from model_helpers import tiny_checkpoint
from onnx_fixtures import build_model, defect_frame, good_frame
from ports import free_port
from runtime_helpers import write_video
from serve_helpers import png, running
from triton_helpers import ServerUnavailable, start_server

from uniad_edge.errors import UniadError
from uniad_edge.export.triton_repo import TritonOptions, export_triton
from uniad_edge.line_thresholds import read_file, weights_id
from uniad_edge.metadata import METADATA_KEY, Thresholds
from uniad_edge.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from uniad_edge.runtime.backends.triton_backend import TritonBackend, parse_url
from uniad_edge.runtime.detector import Detector

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc,http] not installed")
pytest.importorskip("tritonclient.http", reason="tritonclient[grpc,http] not installed")

RTOL = 1e-5
MODEL = "uniad"
CLASSES = {"wood": 30.0, "pill": 60.0}


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """(server, local fixture ONNX): one tritonserver for the whole session, skipped with the
    server's own reason where it cannot start."""
    root = tmp_path_factory.mktemp("triton")
    onnx_path = root / "fixture.onnx"
    build_model(onnx_path, input_size=(32, 48), per_class=CLASSES)
    options = TritonOptions(backend="python", max_batch_size=8, ort_threads=1)
    export_triton(onnx_path, root / "repo", options)
    # A second model whose config lost its metadata, as a hand-written repository would be.
    bare = export_triton(onnx_path, root / "repo", replace(options, name="bare")).config_path
    lines = bare.read_text().splitlines(keepends=True)
    bare.write_text("".join(line for line in lines if f'key: "{METADATA_KEY}"' not in line))
    try:
        server = start_server(root / "repo", root / "server")
    except ServerUnavailable as exc:
        pytest.skip(f"tritonserver cannot start here: {exc}")
    print(f"tritonserver ready in {server.startup_s:.2f} s")  # noqa: T201 - shown with -s
    yield server, onnx_path
    server.stop()


def frames(seed: int, count: int = 5) -> list[np.ndarray]:
    """Frames of several sizes (the Detector resizes them), every third with a defect."""
    sizes = [(48, 64), (32, 48), (60, 40)]
    return [
        (defect_frame if i % 3 == 2 else good_frame)(sizes[i % 3], seed=seed * 100 + i)
        for i in range(count)
    ]


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """Relative error (max abs difference over the max magnitude) within RTOL."""
    assert actual.shape == expected.shape and actual.dtype == np.float32
    scale = max(float(np.abs(expected).max()), 1e-12)
    assert float(np.abs(actual - expected).max()) / scale <= RTOL


def assert_same_detections(remote: list, local: list) -> None:
    assert len(remote) == len(local)
    for r, loc in zip(remote, local, strict=True):
        assert_close(np.array([r.score], np.float32), np.array([loc.score], np.float32))
        assert_close(r.model_map, loc.model_map)
        assert (r.threshold, r.verdict) == (loc.threshold, loc.verdict)


@pytest.mark.parametrize("scheme", ["grpc", "http"])
def test_maps_scores_and_metadata_equal_the_local_backend(served, scheme) -> None:
    server, onnx_path = served
    with TritonBackend(server.url(MODEL, scheme)) as remote, OnnxRuntimeBackend(onnx_path) as local:
        assert remote.metadata.to_dict() == local.metadata.to_dict()  # from the server alone
        assert remote.max_batch_size == 8 and remote.device_type == "cpu"
        assert remote.input_shape == (None, 32, 48, 3)
        rng = np.random.default_rng(1)
        for batch in (1, 3, 11):  # 11 > max_batch_size: sent as 8 + 3
            images = rng.integers(0, 256, (batch, 32, 48, 3), dtype=np.uint8)
            maps, scores = remote.infer(images)
            expected_maps, expected_scores = local.infer(images)
            assert_close(maps, expected_maps)
            assert_close(scores, expected_scores)
            maps[0, 0, 0] = -1.0  # results belong to the caller: writable
        with Detector(remote, class_name="pill") as detector:
            assert detector.threshold == 60.0
            expected = Detector(local, class_name="pill").predict(frames(0))
            got = detector.predict(frames(0))
            assert_same_detections(got, expected)
            assert [d.verdict for d in got] == ["OK", "OK", "NG", "OK", "OK"]


def test_concurrent_camera_clients_get_their_own_results(served) -> None:
    server, onnx_path = served
    with Detector(onnx_path) as local:
        expected = {seed: local.predict(frames(seed, 4)) for seed in range(6)}
    errors: list[BaseException] = []
    results: dict[int, list] = {}

    def camera(seed: int) -> None:
        scheme = "http" if seed % 3 == 2 else "grpc"
        try:
            with Detector(server.url(MODEL, scheme)) as detector:  # through the registry
                for _ in range(5):
                    results[seed] = detector.predict(frames(seed, 4))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=camera, args=(seed,)) for seed in expected]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(results) == sorted(expected)
    for seed, got in results.items():
        assert_same_detections(got, expected[seed])


def test_server_down_then_restarted_fails_cleanly_then_reconnects(served) -> None:
    server, onnx_path = served
    images = np.random.default_rng(2).integers(0, 256, (2, 32, 48, 3), dtype=np.uint8)
    with OnnxRuntimeBackend(onnx_path) as local:
        expected_maps, expected_scores = local.infer(images)
    url = server.url(MODEL) + "?timeout=5&retries=1&retry_delay=0.2"
    with TritonBackend(url) as remote, TritonBackend(server.url(MODEL, "http")) as remote_http:
        remote.infer(images)
        remote_http.infer(images)
        server.stop()
        try:
            with pytest.raises(UniadError) as down:
                remote.infer(images)
            message = str(down.value)
            assert "\n" not in message and "unreachable after 2 attempt(s)" in message
        finally:
            server.start()
        for backend in (remote, remote_http):  # same objects, new connections
            maps, scores = backend.infer(images)
            assert_close(maps, expected_maps)
            assert_close(scores, expected_scores)


@pytest.mark.parametrize("scheme", ["grpc", "http"])
def test_no_server_is_one_clear_line(scheme) -> None:
    url = f"{scheme}://127.0.0.1:{free_port()}/{MODEL}?timeout=3"
    with pytest.raises(UniadError) as caught:
        TritonBackend(url)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"Triton server at {url} is not reachable")
    assert "start it" in message


def test_unknown_model_names_the_ready_ones(served) -> None:
    server, _ = served
    with pytest.raises(UniadError, match=r"model 'nope' is not ready .*\(ready: bare, uniad\)"):
        TritonBackend(server.url("nope"))


def test_served_model_without_metadata_is_refused(served) -> None:
    server, _ = served
    with pytest.raises(UniadError, match="has no 'uniad_edge' parameter in its config; serve"):
        TritonBackend(server.url("bare", "http"))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("grpc://127.0.0.1:8001", "expected grpc://HOST"),
        ("ftp://127.0.0.1/uniad", "starts with grpc:// or http://"),
        ("grpc://127.0.0.1:8001/uniad?speed=9", "unknown option 'speed'"),
        ("grpc://127.0.0.1:8001/uniad?timeout=soon", "is not a float"),
        ("http://127.0.0.1:8001/uniad?retries=-1", "retries and retry_delay >= 0"),
    ],
)
def test_bad_urls(url, message) -> None:
    with pytest.raises(UniadError, match=message):
        parse_url(url)


def test_url_carries_version_and_settings() -> None:
    target = parse_url("http://10.0.0.5/insp/3?timeout=2.5&retries=0")
    assert (target.address, target.model, target.settings.version) == ("10.0.0.5:8000", "insp", "3")
    assert (target.settings.timeout, target.settings.retries) == (2.5, 0)


def test_cli_run_scores_a_video_through_the_server(served, tmp_path) -> None:
    server, onnx_path = served
    video = write_video(tmp_path / "line.mp4", good=3, bad=3)
    remote_log, local_log = tmp_path / "remote.jsonl", tmp_path / "local.jsonl"
    for model, log in ((server.url(MODEL), remote_log), (str(onnx_path), local_log)):
        assert run_main("run", "--model", model, "--source", video, "--log", log) == 0
    remote = [json.loads(line) for line in remote_log.read_text().splitlines()]
    local = [json.loads(line) for line in local_log.read_text().splitlines()]
    assert [r["verdict"] for r in remote] == [r["verdict"] for r in local]
    assert [r["verdict"] for r in remote].count("NG") == 3
    assert_close(
        np.array([r["score"] for r in remote], np.float32),
        np.array([r["score"] for r in local], np.float32),
    )


def test_serve_scores_through_the_triton_server(served) -> None:
    """`serve --model grpc://...`: the HTTP service in front of Triton answers like local ORT."""
    server, onnx_path = served
    local = Detector(onnx_path)
    with running(server.url(MODEL)) as srv, httpx.Client(base_url=srv.url) as client:
        for frame in frames(seed=7, count=3):
            r = client.post("/v1/score", content=png(frame), headers={"content-type": "image/png"})
            assert r.status_code == 200, r.text
            expected = local(frame)
            assert r.json()["score"] == pytest.approx(expected.score, rel=RTOL)
            assert r.json()["verdict"] == expected.verdict
        assert client.get("/v1/model").json()["path"] == server.url(MODEL)


def test_cli_bench_measures_the_served_model(served, tmp_path) -> None:
    server, _ = served
    out = tmp_path / "bench.json"
    args = ["bench", "--model", server.url(MODEL), "--batch", "2", "--runs", "3", "--warmup", "1"]
    assert run_main(*args, "--no-e2e", "--json", out) == 0
    report = json.loads(out.read_text())
    (row,) = report["rows"]  # a URL is measured by the triton backend only
    assert (row["backend"], row["status"], row["device"]) == ("triton", "ok", "cpu")
    assert row["images_per_s"] == pytest.approx(2 * 1000 / row["latency_ms"]["p50"], rel=1e-6)
    assert report["model"]["kind"] == "url" and report["model"]["input_size"] == [32, 48]


def test_cli_run_with_the_server_down_is_one_line(tmp_path, capsys) -> None:
    video = write_video(tmp_path / "line.mp4", good=1, bad=0)
    url = f"grpc://127.0.0.1:{free_port()}/{MODEL}?timeout=2"
    assert run_main("run", "--model", url, "--source", video) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not reachable" in err


def test_cli_serve_keeps_a_triton_url_whole(capsys) -> None:
    """`serve --model grpc://...` reaches the Triton backend (a Path would mangle the URL)."""
    url = f"grpc://127.0.0.1:{free_port()}/{MODEL}?timeout=2"
    assert run_main("serve", "--model", url, "--port", free_port()) == 2
    err = capsys.readouterr().err.strip()
    assert "is not reachable" in err and "grpc://127.0.0.1" in err


def test_without_tritonclient_the_error_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tritonclient.grpc", None)  # as if not installed
    with pytest.raises(UniadError, match=r"tritonclient is not installed .*uniad-edge\[triton\]"):
        Detector("grpc://127.0.0.1:8001/uniad")


def test_real_export_is_served_with_its_thresholds(tmp_path) -> None:
    """Checkpoint -> `export --format triton --triton-backend python` -> tritonserver: the served
    real UniAD graph scores like ONNX Runtime on the same file, with the checkpoint's thresholds."""
    thresholds = {"global": 3.0, "per_class": {"wood": 2.0}, "rule": "test"}
    ckpt = tiny_checkpoint(tmp_path / "tiny.pth", thresholds)
    out = tmp_path / "repo"
    args = ["export", "--ckpt", ckpt, "--format", "triton", "--out", out, "--no-verify"]
    assert run_main(*args, "--triton-backend", "python") == 0
    try:
        server = start_server(out, tmp_path / "server")
    except ServerUnavailable as exc:
        pytest.skip(f"tritonserver cannot start here: {exc}")
    try:
        with (
            Detector(server.url(MODEL), class_name="wood") as remote,
            Detector(out / MODEL / "1" / "model.onnx", class_name="wood") as local,
        ):
            assert remote.threshold == 2.0
            expected = Thresholds.from_dict(thresholds).to_dict()
            assert remote.metadata.thresholds.to_dict() == expected
            assert_same_detections(remote.predict(frames(7, 3)), local.predict(frames(7, 3)))
    finally:
        server.stop()


def test_calibrate_writes_the_line_thresholds_file_of_a_served_model(served, tmp_path) -> None:
    """A Triton model has no file to put its thresholds beside: `calibrate --thresholds FILE`
    scores through the server and writes the file its station names; rollback restores."""
    server, onnx_path = served
    data = tmp_path / "val" / "wood"
    for folder, make, count in (("good", good_frame, 30), ("bad", defect_frame, 10)):
        (data / folder).mkdir(parents=True)
        for i in range(count):
            cv2.imwrite(str(data / folder / f"{i:03d}.png"), make((32, 48), seed=i))
    line = tmp_path / "line.thresholds.json"
    url = server.url(MODEL)
    common = ("calibrate", "--model", url, "--data", tmp_path / "val", "--f1")
    assert run_main(*common) == 2  # no file to write: a one-line error, nothing scored
    assert run_main(*common, "--thresholds", line) == 0
    calibrated, weights = read_file(line)
    with Detector(onnx_path) as local:
        assert weights == weights_id(local.metadata)  # the weights behind the URL
    assert calibrated.source == "calibration" and calibrated.per_class["wood"] != CLASSES["wood"]
    assert [h["per_class"] for h in calibrated.history] == [CLASSES]
    with Detector(url, thresholds_file=line) as remote:  # what a station with the file uses
        assert (
            remote.in_force.from_file
            and remote.thresholds.per_class["wood"] == (calibrated.per_class["wood"])
        )
    assert run_main("calibrate", "--model", url, "--rollback", "--thresholds", line) == 0
    assert read_file(line)[0].per_class == CLASSES
