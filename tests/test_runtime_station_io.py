"""The station talking to the line: MQTT verdicts to a real Mosquitto broker (including a
broker restart and a full buffer), triggers over MQTT and stdin, several sources on the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model, good_frame
from runtime_helpers import FRAME_SIZE, Conveyor, write_video
from service_helpers import Mosquitto, Subscriber

from uniad_edge.runtime.capture import Reader
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (pip install paho-mqtt)")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    build_model(path, threshold=40.0)
    return path


@pytest.fixture
def broker(tmp_path):
    server = Mosquitto(tmp_path)
    yield server
    server.stop()


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class PacedReader(Reader):
    """A file-like source (nothing dropped) delivering `count` frames, one per `period_s`."""

    description = "paced source"

    def __init__(self, count: int, period_s: float) -> None:
        self.count, self.period_s, self.sent = count, period_s, 0

    def open(self) -> None:
        pass

    def read(self):
        if self.sent >= self.count:
            return None
        time.sleep(self.period_s)
        self.sent += 1
        return good_frame(FRAME_SIZE, seed=self.sent), ""

    def close(self) -> None:
        pass


def test_cli_two_videos_log_and_mqtt_agree(model, broker, tmp_path):
    """The issue's acceptance run: every frame of both videos, one record each, same MQTT count."""
    one = write_video(tmp_path / "video1.mp4", good=8, bad=4)
    two = write_video(tmp_path / "video2.mp4", good=5, bad=5)
    log = tmp_path / "r.jsonl"
    subscriber = Subscriber(broker.port, "line1")
    code = run_main(
        "run", "--model", model, "--source", f"a={one}", "--source", f"b={two}",
        "--log", log, "--mqtt", broker.url("line1"), "--name", "st1",
    )  # fmt: skip
    assert code == 0
    records = read_log(log)
    assert sorted((r["camera"], r["index"]) for r in records) == sorted(
        [("a", i) for i in range(12)] + [("b", i) for i in range(10)]
    )
    messages = subscriber.wait_for(22)
    subscriber.close()
    assert len(messages) == len(records) == 22
    by_key = {(m["camera"], m["index"]): m for m in messages}
    for record in records:
        message = by_key[(record["camera"], record["index"])]
        assert message["verdict"] == record["verdict"] and message["score"] == record["score"]
        assert message["station"] == "st1" and message["model"] == "fixture"
        assert message["normalized_score"] == pytest.approx(record["score"] / 40.0)
        assert "latency_ms" not in message


def test_broker_restart_mid_run_loses_no_verdict(model, broker, tmp_path):
    subscriber = Subscriber(broker.port, "line/verdicts")
    frames = 60
    config = StationConfig(
        cameras=[
            CameraConfig("a", PacedReader(frames, 0.03)),
            CameraConfig("b", PacedReader(frames, 0.03)),
        ],
        model=model,
        mqtt=broker.url("line/verdicts"),
        mqtt_buffer=500,
    )
    station = Station(config).start()
    deadline = time.monotonic() + 20
    while len(subscriber.messages) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    broker.stop()
    scored_while_down = station.state("a").frames
    time.sleep(0.6)
    assert station.state("a").frames > scored_while_down  # scoring never waited for the broker
    broker.start()
    summary = station.wait(60)
    station.close()
    assert summary is not None and summary.frames == 2 * frames
    subscriber.wait_for(2 * frames, timeout=30)
    subscriber.close()
    assert subscriber.unique() == {(c, i) for c in "ab" for i in range(frames)}
    assert summary.sinks["MQTT messages dropped (buffer full)"] == 0
    assert summary.sinks["MQTT messages unacknowledged at exit"] == 0


def test_full_buffer_drops_and_counts_the_rest(model, broker, tmp_path):
    subscriber = Subscriber(broker.port, "line/verdicts")
    broker.stop()  # the broker is away for the whole run
    config = StationConfig(
        cameras=[CameraConfig("a", PacedReader(25, 0.0))],
        model=model,
        mqtt=broker.url("line/verdicts"),
        mqtt_buffer=10,
    )
    with Station(config) as station:
        threading.Timer(1.0, broker.start).start()  # back while the station drains at the end
        summary = station.run()
    assert summary.frames == 25
    assert summary.sinks["MQTT messages dropped (buffer full)"] == 15
    assert summary.sinks["MQTT messages unacknowledged at exit"] == 0
    subscriber.wait_for(10, timeout=30)
    time.sleep(0.3)
    subscriber.close()
    assert subscriber.unique() == {("a", i) for i in range(10)}  # the oldest ten, in the buffer


def test_mqtt_trigger_scores_the_part_and_publishes_it(model, broker):
    import paho.mqtt.client as paho

    subscriber = Subscriber(broker.port, "line/verdicts")
    config = StationConfig(
        cameras=[CameraConfig("top", Conveyor()), CameraConfig("side", Conveyor())],
        model=model,
        mqtt=broker.url("line/verdicts"),
        trigger=broker.url("line/trigger"),
    )
    assert config.trigger_only
    station = Station(config).start()
    try:
        assert station.trigger_sources[0].subscribed.wait(10)
        plc = paho.Client(paho.CallbackAPIVersion.VERSION2)
        plc.connect("127.0.0.1", broker.port)
        plc.loop_start()
        plc.publish("line/trigger", "top P-9", qos=1).wait_for_publish(5)
        plc.publish("line/trigger", json.dumps({"part_id": "P-10"}), qos=1).wait_for_publish(5)
        plc.publish("line/trigger", "{broken", qos=1).wait_for_publish(5)
        messages = subscriber.wait_for(3)
        plc.disconnect()
        plc.loop_stop()
    finally:
        station.stop()
        summary = station.wait(10)
        station.close()
        subscriber.close()
    assert sorted((m["camera"], m["part_id"]) for m in messages) == [
        ("side", "P-10"),
        ("top", "P-10"),
        ("top", "P-9"),
    ]
    assert summary is not None and summary.frames == 3  # nothing scored without a trigger
    assert len(summary.cameras["top"].trigger_ms) == 2
    assert station.trigger_sources[0].rejected == 1


def test_stdin_trigger_with_part_ids(model, tmp_path):
    one = write_video(tmp_path / "v1.mp4", good=6, bad=0)
    two = write_video(tmp_path / "v2.mp4", good=6, bad=0)
    log = tmp_path / "r.jsonl"
    command = [
        sys.executable, "-c", "from uniad_edge.cli import main; main()", "run",
        "--model", str(model), "--source", f"a={one}", "--source", f"b={two}",
        "--trigger", "stdin", "--log", str(log),
    ]  # fmt: skip
    done = subprocess.run(
        command,
        input="a P1\nb P2\nP3\n\n   \na\n",  # blank lines are no trigger; `a` has no part id
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stderr
    records = read_log(log)
    parts = {c: [r["part_id"] for r in records if r["camera"] == c] for c in "ab"}
    assert parts == {"a": ["P1", "P3", None], "b": ["P2", "P3"]}
    assert all(r["trigger_ms"] > 0 for r in records)
    assert [r["index"] for r in records if r["camera"] == "a"] == [0, 1, 2]
    for camera in "ab":  # the summary's percentiles, recomputed from the records
        p50, p99 = np.percentile(
            [r["trigger_ms"] for r in records if r["camera"] == camera], [50, 99]
        )
        line = next(x for x in done.stdout.splitlines() if f"{camera}: trigger to verdict" in x)
        assert f"{p50:.1f} / {p99:.1f}" in line
    assert "end of triggers" in done.stdout


def _run_stdin(model: Path, sources: list[str], lines: str, log: Path):
    command = [sys.executable, "-c", "from uniad_edge.cli import main; main()", "run"]
    command += ["--model", str(model), "--trigger", "stdin", "--log", str(log)]
    for source in sources:
        command += ["--source", source]
    return subprocess.run(
        command,
        input=lines,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "120"},
    )


def test_one_camera_station_warns_once_when_a_line_names_no_camera(model, tmp_path):
    video = write_video(tmp_path / "v.mp4", good=6, bad=0)
    log = tmp_path / "r.jsonl"
    done = _run_stdin(model, [f"a={video}"], "P-17\ntop P-18\nleft P-19\na P-20\n", log)
    assert done.returncode == 0, done.stderr
    assert [r["part_id"] for r in read_log(log)] == ["P-17", "top P-18", "left P-19", "P-20"]
    warnings = [line for line in done.stderr.splitlines() if "not a camera of this station" in line]
    assert len(warnings) == 1, done.stderr  # once, although two lines were taken whole
    assert "'top'" in warnings[0] and "'a'" in warnings[0] and "part id" in warnings[0]


def test_readme_stdin_trigger_example_names_cameras_that_exist(model, tmp_path):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("printf '")  # the command, with its continuation lines
    example = readme[start:].split("\n\n", 1)[0].replace("\\\n", " ").splitlines()[0]
    assert "--trigger stdin" in example
    lines = example.split("printf '", 1)[1].split("'", 1)[0].split("\\n")
    names = [arg.split("=", 1)[0] for arg in example.split("--source ")[1:]]
    first_words = [line.split()[0] for line in lines if len(line.split()) > 1]
    assert first_words and all(word in names for word in first_words), example
    # and it does what its comment says, on two cameras of those names
    videos = [write_video(tmp_path / f"{n}.mp4", good=4, bad=0) for n in names]
    log = tmp_path / "r.jsonl"
    sources = [f"{n}={v}" for n, v in zip(names, videos, strict=True)]
    done = _run_stdin(model, sources, "\n".join(lines), log)
    assert done.returncode == 0, done.stderr
    parts = {n: [r["part_id"] for r in read_log(log) if r["camera"] == n] for n in names}
    assert parts == {"top": ["P-17", "P-18"], "side": ["P-17"]}
    assert "not a camera" not in done.stderr
