"""The station's parts (issue 27): one model slot for `run` and `serve`, one record and one set
of counters that every consumer reads, parts that import one way."""

from __future__ import annotations

import ast
import asyncio
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from onnx_fixtures import build_model, defect_frame, good_frame
from runtime_helpers import FRAME_SIZE

from uniad_edge.runtime.capture import Reader
from uniad_edge.runtime.detector import Detector
from uniad_edge.runtime.record import VerdictCounts, VerdictRecord
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig
from uniad_edge.runtime.station.slot import ModelSlot, station_loader

STATION = Path(__file__).parent.parent / "uniad_edge" / "runtime" / "station"


class TwelveBitCamera(Reader):
    """A machine-vision camera delivering 12-bit frames in uint16: `count` frames, good and
    defective in turn, the same sequence every time it is opened."""

    def __init__(self, count: int = 6) -> None:
        self.count = count
        self.sent = 0

    def open(self) -> None:
        self.sent = 0

    def read(self):
        if self.sent >= self.count:
            return None
        maker = defect_frame if self.sent % 2 else good_frame
        frame = (maker(FRAME_SIZE, seed=self.sent).astype(np.uint16) << 4) | 5
        self.sent += 1
        return frame, f"f{self.sent:03d}"

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    build_model(path, threshold=40.0)
    return path


@pytest.fixture(scope="module")
def unthresholded(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bare") / "bare.onnx"
    build_model(path, threshold=None)
    return path


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def drain(service, frames: int) -> None:
    """Close `service` once its camera's `frames` records are counted (serve runs on, taking
    API requests, after its cameras end)."""
    deadline = time.monotonic() + 60
    try:
        while service.station.counts()["top"].total < frames:
            assert time.monotonic() < deadline, "the camera's frames were not scored in time"
            time.sleep(0.02)
    finally:
        service.close()


def scored(records: list[dict]) -> list[tuple]:
    return [(r["name"], r["score"], r["verdict"], r["threshold"]) for r in records]


def test_a_twelve_bit_camera_scores_identically_under_run_and_serve(model, tmp_path):
    """serve opens its model through the station's slot, so it keeps the station's bit depth
    (its own opener used to drop it: ERROR "frame is 16-bit" under serve, verdicts under run)."""
    pytest.importorskip("fastapi")
    from uniad_edge.serve.config import ServeConfig
    from uniad_edge.serve.server import build_service

    def station(log: Path) -> StationConfig:
        return StationConfig(
            cameras=[CameraConfig("top", TwelveBitCamera())], model=model, log=log, bit_depth=12
        )

    with Station(station(tmp_path / "run.jsonl")) as line:
        line.run()
    drain(build_service(ServeConfig(station=station(tmp_path / "serve.jsonl"))), 6)
    run, serve = read_log(tmp_path / "run.jsonl"), read_log(tmp_path / "serve.jsonl")
    assert [r["verdict"] for r in run] == ["OK", "NG"] * 3
    assert scored(serve) == scored(run)


def test_a_verdict_of_none_is_counted_the_same_everywhere(unthresholded, tmp_path):
    """After the same frames, the summary, /metrics, the event stream and a live OPC UA server
    read the same OK/NG/ERROR/UNSCORED numbers from the one `VerdictCounts` (a verdict of None
    used to be ERROR over OPC UA and nothing in the summary)."""
    pytest.importorskip("fastapi")
    from opcua_helpers import namespace, read_camera, run
    from ports import on_a_free_port
    from prometheus_client.parser import text_string_to_metric_families

    from uniad_edge.runtime.opcua.config import OpcuaConfig
    from uniad_edge.serve.config import ServeConfig
    from uniad_edge.serve.server import build_service

    class Broken(TwelveBitCamera):
        def read(self):  # a 12-bit frame without bit_depth: ERROR, beside unscored 8-bit ones
            got = super().read()
            if got is None or self.sent != 3:
                return None if got is None else (got[0].astype(np.uint8), got[1])
            return got

    log = tmp_path / "v.jsonl"

    def start(port: int):  # the server binds its port at build: another one if it was taken
        url = f"opc.tcp://127.0.0.1:{port}/uniad"
        config = StationConfig(
            cameras=[CameraConfig("top", Broken(5))],
            model=unthresholded,
            log=log,
            opcua=OpcuaConfig(url),
        )
        return build_service(ServeConfig(station=config)), url

    service, url = on_a_free_port(start)

    async def opcua_values() -> dict:
        from asyncua import Client

        async with Client(url) as client:
            idx = await namespace(client)
            deadline = time.monotonic() + 30
            values = await read_camera(client, idx, "top")
            while values["FrameIndex"] != 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                values = await read_camera(client, idx, "top")
            return values

    try:
        deadline = time.monotonic() + 60
        while service.station.counts()["top"].total < 5:
            assert time.monotonic() < deadline, "the camera's frames were not scored in time"
            time.sleep(0.02)
        values = run(opcua_values())
        metrics = {
            (s.name, s.labels.get("camera")): s.value
            for family in text_string_to_metric_families(service.metrics.render().decode())
            for s in family.samples
        }
        events = service.hub.snapshot()["counters"]["top"]
    finally:
        service.close()
    summary = service.station.summary
    assert summary is not None
    verdicts = [r["verdict"] for r in read_log(log)]
    assert verdicts.count(None) == 4 and verdicts.count("ERROR") == 1
    assert (summary.ok, summary.ng, summary.errors, summary.unscored) == (0, 0, 1, 4)
    assert summary.frames == 5
    top = "top"
    assert metrics[("uniad_unscored_total", top)] == 4
    assert metrics[("uniad_errors_total", top)] == 1
    assert metrics[("uniad_ok_total", top)] == metrics[("uniad_ng_total", top)] == 0
    assert metrics[("uniad_frames_scored_total", top)] == 5
    assert {k: events[k] for k in ("OK", "NG", "ERROR", "UNSCORED", "total")} == {
        "OK": 0,
        "NG": 0,
        "ERROR": 1,
        "UNSCORED": 4,
        "total": 5,
    }
    assert (values["OkCount"], values["NgCount"], values["ErrorCount"]) == (0, 0, 1)
    assert values["UnscoredCount"] == 4
    assert values["Verdict"] == "UNSCORED" and values["IsOK"] is False


def test_the_record_is_frozen_and_reads_as_the_log_line(model, tmp_path):
    seen = []
    config = StationConfig(
        cameras=[CameraConfig("top", TwelveBitCamera(2))],
        model=model,
        bit_depth=12,
        log=tmp_path / "v.jsonl",
    )
    with Station(config) as line:
        line.subscribe(seen.append)
        line.run()
    record = seen[0].record
    assert isinstance(record, VerdictRecord)
    with pytest.raises(AttributeError):
        record.verdict = "OK"  # type: ignore[misc]
    assert dict(record) == read_log(tmp_path / "v.jsonl")[0]
    assert record.kind == "OK" and seen[1].counts.ng == 1 and seen[0].counts.ok == 1


def test_a_source_attaches_its_own_frame_facts_and_lost_frames(model, tmp_path):
    """The hook a GigE source uses: per-frame facts into the record (log, MQTT), lost frames
    into the counters."""

    class FactCamera(TwelveBitCamera):
        def read(self):
            got = super().read()
            self.lost = 2 * self.sent
            return got

        def frame_facts(self):
            return {"camera_frame_id": 1000 + self.sent}

    seen = []
    config = StationConfig(cameras=[CameraConfig("top", FactCamera(2))], model=model, bit_depth=12)
    with Station(config) as line:
        line.subscribe(seen.append)
        line.run()
        counts = line.counts()["top"]
    assert [v.record["camera_frame_id"] for v in seen] == [1001, 1002]
    assert seen[0].record.fields_for("message")["camera_frame_id"] == 1001
    assert counts.lost == 4 and counts.total == 2


def test_the_slot_closes_what_it_opened_and_never_what_it_borrowed(model):
    closed = []

    class Tracked(Detector):
        def close(self) -> None:
            closed.append(self)
            super().close()

    config = StationConfig(model=model)
    lent = Tracked(model)
    ModelSlot.for_station(config, lent).close()
    assert closed == []
    owned = ModelSlot(lambda path: Tracked(path), model)
    owned.close()
    owned.close()
    assert closed == [owned.detector]
    lent.close()
    assert station_loader(StationConfig(bit_depth=12))(str(model)).bit_depth == 12


def test_a_second_swap_while_one_runs_is_refused_at_once(model):
    from uniad_edge.runtime.station.slot import SwapInProgress

    slot = ModelSlot(station_loader(StationConfig()), model)
    gate = threading.Event()

    def slow(path, opener, owned):
        gate.wait(10)
        raise RuntimeError("stop")

    first = slot.request(model, slow, lambda: None)
    with pytest.raises(SwapInProgress):
        slot.request(model, slow, lambda: None).result(5)
    gate.set()
    with pytest.raises(Exception, match="stop"):
        first.result(5)
    slot.close()


def test_counts_count_every_record_once():
    counts = VerdictCounts()
    base = dict(station=None, camera="c", index=0, timestamp=0.0, source="s", name="n")
    base |= dict(model=None, score=1.0, normalized_score=None, threshold=None, latency_ms={})
    for verdict, error in (("OK", None), ("NG", None), (None, None), ("ERROR", "x"), ("OK", "x")):
        counts.add(VerdictRecord(**base, verdict=verdict, error=error))
    assert counts.as_dict() == {
        "ok": 1,
        "ng": 1,
        "error": 2,
        "unscored": 1,
        "dropped": 0,
        "lost": 0,
    }


def test_the_station_parts_import_one_way():
    """The station's parts import one way (config <- slot <- stats <- inputs <- requests <-
    scorer <- outputs <- swap <- loop <- core): no part imports the coordinator or a later part, and
    the record imports no station, sink or serve module."""
    order = [
        "config",
        "slot",
        "stats",
        "inputs",
        "requests",
        "scorer",
        "outputs",
        "swap",
        "loop",
        "core",
    ]
    for i, name in enumerate(order):
        tree = ast.parse((STATION / f"{name}.py").read_text())
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        }
        later = set(order[i + 1 :])
        assert not imported & later, (name, imported & later)
    record = ast.parse((STATION.parent / "record.py").read_text())
    modules = {n.module for n in ast.walk(record) if isinstance(n, ast.ImportFrom)}
    assert not any(m and ("station" in m or "sinks" in m or "serve" in m) for m in modules)


def test_no_runtime_class_keeps_more_than_25_methods():
    """The station is a coordinator, not a 45-method class: its scoring loop lives in
    `loop.py`, and no class in the runtime grows back past 25 methods."""
    runtime = STATION.parent
    big = {}
    for path in runtime.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                methods = [
                    b for b in node.body if isinstance(b, ast.FunctionDef | ast.AsyncFunctionDef)
                ]
                if len(methods) > 25:
                    big[f"{path.relative_to(runtime)}:{node.name}"] = len(methods)
    assert big == {}


def test_a_running_station_takes_a_new_thresholds_file_without_reopening_the_model(model, tmp_path):
    """The line's thresholds live beside the model: a new file (calibrate, a rollback, an
    update) applies from the next batch on, the model stays open, the model id in the log
    (and so OPC UA's ModelId and /v1/model) names the new thresholds, and the model file's
    bytes never change."""
    from uniad_edge.artifacts import write_thresholds
    from uniad_edge.line_thresholds import digest, thresholds_path
    from uniad_edge.metadata import Thresholds

    for suffix in (".onnx", ".json"):  # a copy: the module's model keeps no thresholds file
        shutil.copy(model.with_suffix(suffix), (tmp_path / "line").with_suffix(suffix))
    model = tmp_path / "line.onnx"
    exported = model.read_bytes()
    log = tmp_path / "v.jsonl"
    gate = threading.Event()

    class Paced(TwelveBitCamera):
        def read(self):
            if self.sent == 3:
                gate.wait(30)  # the thresholds file is replaced while the station runs
            return super().read()

    config = StationConfig(
        cameras=[CameraConfig("top", Paced(6))], model=model, bit_depth=12, log=log
    )
    opened = []
    with Station(config) as line:
        detector = line.detector
        line.subscribe(lambda verdict: opened.append(line.detector))
        line.start()
        deadline = time.monotonic() + 30
        while line.counts()["top"].total < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        new = Thresholds(global_=1e6, rule="test", provenance={"source": "calibration"})
        write_thresholds(model, new)
        deadline = time.monotonic() + 30
        while "+t" not in line.model_id:
            assert time.monotonic() < deadline, "the new thresholds file was not taken"
            time.sleep(0.05)
        gate.set()
        summary = line.wait(60)
    assert summary is not None and all(d is detector for d in opened)
    records = read_log(log)
    verdicts = [r for r in records if "event" not in r]
    assert [r["threshold"] for r in verdicts] == [40.0] * 3 + [1e6] * 3
    assert [r["verdict"] for r in verdicts] == ["OK", "NG", "OK"] + ["OK"] * 3
    (change,) = [r for r in records if r.get("event") == "thresholds_changed"]
    assert change["previous_model"] == "fixture" == verdicts[0]["model"]
    assert change["model"] == f"fixture+t{digest(new)}" == verdicts[-1]["model"]
    assert change["path"] == str(thresholds_path(model))
    assert model.read_bytes() == exported
