"""Model update without stopping the line: `Station.swap_model` under load, refusals that keep
the old model, the `model_changed` record, the old model released, --watch-model, SIGHUP."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from onnx_fixtures import defect_frame, named_model
from runtime_helpers import FRAME_SIZE, Conveyor

from uniad_edge.errors import UniadError
from uniad_edge.runtime.capture import Reader
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig

WAIT_S = 120.0
CLI = "from uniad_edge.cli import main; main()"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "A": named_model(root / "a.onnx", "model-a", pool=5),
        "B": named_model(root / "b.onnx", "model-b", pool=3),
        "wide": named_model(root / "wide.onnx", "model-wide", input_size=(32, 48)),
    }


class Frames(Reader):
    """A file-like source (none dropped): identical defective frames until `count` are sent
    or `until` is set, then the end."""

    description = "frames"

    def __init__(self, count: int | None = None, until: threading.Event | None = None) -> None:
        self.count = count
        self.until = until
        self.sent = 0

    def open(self) -> None:
        self.sent = 0

    def read(self):
        if (self.count is not None and self.sent >= self.count) or (
            self.until is not None and self.until.is_set()
        ):
            return None
        self.sent += 1
        return defect_frame(FRAME_SIZE, seed=0), ""

    def close(self) -> None:
        pass


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def station(models, tmp_path, cameras: dict[str, Reader], **options) -> Station:
    config = StationConfig(
        cameras=[CameraConfig(name, reader) for name, reader in cameras.items()],
        model=models["A"],
        log=tmp_path / "line.jsonl",
        **options,
    )
    return Station(config)


def test_twenty_swaps_under_two_cameras_score_every_frame_once_with_the_right_model(
    models, tmp_path
):
    swapped = threading.Event()
    line = station(models, tmp_path, {n: Frames(until=swapped) for n in ("left", "right")})
    ids: list[str] = []

    def swapper() -> None:
        try:
            for i in range(20):
                ids.append(line.swap_model(models["B" if i % 2 == 0 else "A"]).result(WAIT_S))
        finally:
            swapped.set()  # the cameras end once all swaps are done

    line.start()
    worker = threading.Thread(target=swapper)
    worker.start()
    worker.join(WAIT_S * 4)
    summary = line.wait(WAIT_S)
    line.close()
    assert summary is not None and not worker.is_alive()
    assert ids == ["model-b", "model-a"] * 10
    records = read_log(tmp_path / "line.jsonl")
    changes = [r for r in records if r.get("event") == "model_changed"]
    assert [c["model"] for c in changes] == ids
    assert [c["previous_model"] for c in changes] == ["model-a", "model-b"] * 10
    current = "model-a"
    scores: dict[str, set[float]] = {"model-a": set(), "model-b": set()}
    for record in records:  # the log is in output order: each record after its model's change
        if record.get("event") == "model_changed":
            current = record["model"]
            continue
        assert record["model"] == current
        scores[current].add(record["score"])
    assert len(scores["model-a"]) == 1 and len(scores["model-b"]) == 1  # each scored it all
    assert scores["model-a"] != scores["model-b"]
    for camera in ("left", "right"):
        indices = [r["index"] for r in records if r.get("camera") == camera]
        assert indices == list(range(len(indices)))  # none dropped, none twice
        assert len(indices) == summary.cameras[camera].frames
    scored_by = [r["model"] for r in records if "event" not in r]
    assert scored_by.count("model-a") > 20 and scored_by.count("model-b") > 20


def test_a_model_that_fails_a_check_is_refused_and_the_old_one_keeps_scoring(
    models, tmp_path, caplog
):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx model")
    line = station(models, tmp_path, {"top": Conveyor()})
    old = line.detector
    line.start()
    try:
        cases = {
            tmp_path / "missing.onnx": "cannot open",
            garbage: "cannot open",
            models["wide"]: "takes 48x32 inputs but the running model 32x32",
        }
        for path, reason in cases.items():
            with pytest.raises(UniadError, match=reason) as caught:
                line.swap_model(path).result(WAIT_S)
            assert "\n" not in str(caught.value)
            assert line.detector is old and line.model_id == "model-a"
        before = line.state("top").frames
        deadline = time.monotonic() + WAIT_S
        while line.state("top").frames < before + 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert line.state("top").frames >= before + 20
        assert old.backend.session is not None  # the old model was never closed
    finally:
        line.stop()
        line.wait(WAIT_S)
        line.close()
    records = read_log(tmp_path / "line.jsonl")
    assert not [r for r in records if r.get("event") == "model_changed"]
    assert {r["model"] for r in records} == {"model-a"}
    warnings = [r.getMessage() for r in caplog.records if "model not swapped" in r.getMessage()]
    assert len(warnings) == 3


def test_an_unknown_class_is_refused(models, tmp_path):
    root = tmp_path / "m"
    wood = named_model(root / "wood.onnx", "model-wood", per_class={"wood": 40.0})
    tile = named_model(root / "tile.onnx", "model-tile", per_class={"tile": 40.0})
    config = StationConfig(cameras=[CameraConfig("top", Conveyor(), class_name="wood")], model=wood)
    with Station(config) as line:
        with pytest.raises(UniadError, match="class 'wood' is not one this model"):
            line.swap_model(tile).result(WAIT_S)
        assert line.model_id == "model-wood"


def test_the_swap_closes_the_old_model_and_the_station_closes_the_new_one(models, tmp_path):
    line = station(models, tmp_path, {"top": Conveyor()})
    old = line.detector
    line.start()
    try:
        assert line.swap_model(models["B"]).result(WAIT_S) == "model-b"
        assert old.backend.session is None  # closed: its memory is released
        assert line.detector is not old and line.model_id == "model-b"
        frames = line.state("top").frames
        deadline = time.monotonic() + WAIT_S
        while line.state("top").frames < frames + 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        line.stop()
        line.wait(WAIT_S)
        line.close()
    assert line.detector.backend.session is None  # the station closed the model it swapped in
    records = read_log(tmp_path / "line.jsonl")
    assert records[-1]["model"] == "model-b"


def test_before_start_the_swap_applies_at_once(models, tmp_path):
    line = station(models, tmp_path, {"top": Frames(3)})
    assert line.swap_model(models["B"]).result(WAIT_S) == "model-b"
    summary = line.run()
    line.close()
    assert summary.frames == 3
    records = read_log(tmp_path / "line.jsonl")
    assert records[0]["event"] == "model_changed"
    assert {r["model"] for r in records[1:]} == {"model-b"}


def test_watch_model_reloads_when_the_file_is_replaced_atomically(models, tmp_path):
    live = tmp_path / "live.onnx"
    live.write_bytes(models["A"].read_bytes())
    live.with_suffix(".json").write_bytes(models["A"].with_suffix(".json").read_bytes())
    config = StationConfig(
        cameras=[CameraConfig("top", Conveyor())], model=live, log=tmp_path / "line.jsonl"
    )
    with Station(config) as line:
        line.start()
        with line.watch_model(interval_s=0.1):
            staged = tmp_path / "staged.onnx"
            staged.write_bytes(models["B"].read_bytes())
            live.with_suffix(".json").write_bytes(models["B"].with_suffix(".json").read_bytes())
            os.replace(staged, live)  # what calibrate does
            deadline = time.monotonic() + WAIT_S
            while line.model_id != "model-b" and time.monotonic() < deadline:
                time.sleep(0.05)
        assert line.model_id == "model-b"
        line.stop()
        line.wait(WAIT_S)
    changes = [r for r in read_log(tmp_path / "line.jsonl") if r.get("event") == "model_changed"]
    assert [c["model"] for c in changes] == ["model-b"]


def test_watch_model_waits_for_a_slow_in_place_copy_to_finish(models, tmp_path, caplog):
    """A copy written in place over two seconds: nothing half-written is loaded or warned about
    as corrupt; one line says it waits, then the finished file is swapped in once."""
    caplog.set_level(logging.INFO, logger="uniad_edge.runtime.station.swap")
    live = tmp_path / "live.onnx"
    live.write_bytes(models["A"].read_bytes())
    live.with_suffix(".json").write_bytes(models["A"].with_suffix(".json").read_bytes())
    config = StationConfig(
        cameras=[CameraConfig("top", Conveyor())], model=live, log=tmp_path / "line.jsonl"
    )
    data = models["B"].read_bytes()
    chunks = [data[i : i + len(data) // 40 + 1] for i in range(0, len(data), len(data) // 40 + 1)]
    with Station(config) as line:
        line.start()
        with line.watch_model(interval_s=0.5):
            live.with_suffix(".json").write_bytes(models["B"].with_suffix(".json").read_bytes())
            with live.open("r+b") as copy:  # in place, as `cp new.onnx live.onnx` writes
                copy.truncate(0)
                for chunk in chunks:
                    copy.write(chunk)
                    copy.flush()
                    time.sleep(0.05)
            deadline = time.monotonic() + WAIT_S
            while line.model_id != "model-b" and time.monotonic() < deadline:
                time.sleep(0.05)
        assert line.model_id == "model-b"
        line.stop()
        line.wait(WAIT_S)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not [m for m in said if "not swapped" in m or "corrupt" in m], said
    assert len([m for m in said if "waiting for the copy to finish" in m]) == 1, said
    changes = [r for r in read_log(tmp_path / "line.jsonl") if r.get("event") == "model_changed"]
    assert [c["model"] for c in changes] == ["model-b"]


def test_run_reloads_on_sighup(models, tmp_path):
    live = tmp_path / "live.onnx"
    live.write_bytes(models["A"].read_bytes())
    live.with_suffix(".json").write_bytes(models["A"].with_suffix(".json").read_bytes())
    folder = tmp_path / "frames"
    folder.mkdir()
    import cv2

    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), defect_frame(FRAME_SIZE))
    log = tmp_path / "line.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "run", "--model", str(live), "--source", str(folder),
         "--trigger", "stdin", "--log", str(log)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert proc.stdin is not None
        proc.stdin.write("P1\n")
        proc.stdin.flush()
        deadline = time.monotonic() + WAIT_S
        while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        live.with_suffix(".json").write_bytes(models["B"].with_suffix(".json").read_bytes())
        staged = tmp_path / "staged.onnx"
        staged.write_bytes(models["B"].read_bytes())
        os.replace(staged, live)
        proc.send_signal(signal.SIGHUP)
        while "model_changed" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.stdin.write("P2\n")
        proc.stdin.close()
        proc.wait(WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    records = read_log(log)
    assert [r.get("event") for r in records] == [None, "model_changed", None], proc.stderr.read()
    assert [r.get("part_id") for r in records] == ["P1", None, "P2"]
    assert [r["model"] for r in records] == ["model-a", "model-b", "model-b"]
    assert records[1]["previous_model"] == "model-a"


def test_serve_post_v1_model_swaps_cameras_and_api_and_refuses_bad_models(models, tmp_path):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from serve_helpers import png, running

    from uniad_edge.runtime.station import StationConfig as Config

    log = tmp_path / "line.jsonl"
    station = Config(cameras=[CameraConfig("top", Conveyor())], log=log)
    with (
        running(models["A"], station=station, log=log) as server,
        httpx.Client(base_url=server.url, timeout=WAIT_S) as client,
    ):
        image, headers = png(defect_frame(FRAME_SIZE)), {"content-type": "image/png"}
        before = client.post("/v1/score", content=image, headers=headers).json()
        assert client.get("/v1/model").json()["model_id"] == "model-a"
        refused = client.post("/v1/model", json={"path": str(models["wide"])})
        assert refused.status_code == 422 and "takes 48x32 inputs" in refused.json()["detail"]
        assert client.post("/v1/model", json={"file": "x"}).status_code == 422
        swapped = client.post("/v1/model", json={"path": str(models["B"])})
        assert swapped.status_code == 200, swapped.text
        assert swapped.json() == {
            "model": "model-b",
            "previous_model": "model-a",
            "path": str(models["B"]),
        }
        info = client.get("/v1/model").json()
        assert info["model_id"] == "model-b" and info["path"] == str(models["B"])
        after = client.post("/v1/score", content=image, headers=headers).json()
        assert after["score"] != before["score"]  # the API scores on the new model
        assert (before["model"], after["model"]) == ("model-a", "model-b")
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            records = read_log(log)
            if records and records[-1].get("model") == "model-b" and "event" not in records[-1]:
                break
            time.sleep(0.05)
    records = read_log(log)
    changes = [r for r in records if r.get("event") == "model_changed"]
    assert [c["model"] for c in changes] == ["model-b"]
    assert records[-1]["model"] == "model-b"


def test_serve_post_v1_model_needs_a_token_off_loopback(models):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from uniad_edge.serve.app import create_app
    from uniad_edge.serve.config import ServeConfig
    from uniad_edge.serve.server import build_service

    config = ServeConfig.from_options(model=models["A"], host="0.0.0.0", insecure=True)
    service = build_service(config)
    try:
        client = TestClient(create_app(service), base_url="http://0.0.0.0")
        answer = client.post("/v1/model", json={"path": str(models["B"])})
        assert answer.status_code == 403 and "needs serve --token" in answer.json()["detail"]
        assert service.station.detector.metadata.name == "model-a"
    finally:
        service.close()
