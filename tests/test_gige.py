"""`gige://` GenICam cameras through Aravis: pixel formats as cameras send them, settings checked
against the camera, and stations on the GigE Vision simulator on 127.0.0.1 (free-running,
software-triggered, power loss, a camera never there, a camera another station holds)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import end, run_main
from gige_helpers import DEVICE, FakeGigeCamera, env_with_path
from onnx_fixtures import build_model
from rich.console import Console

from uniad_edge.errors import UniadError
from uniad_edge.runtime.capture import FOREVER, FrameStream, Reader, make_reader
from uniad_edge.runtime.capture.base import SourceRefused
from uniad_edge.runtime.capture.gige import FrameIds, parse_gige_url
from uniad_edge.runtime.capture.pixels import FORMATS, check_depth, to_frame
from uniad_edge.runtime.opcua.values import camera_values
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig
from uniad_edge.runtime.station.file import load_station_file
from uniad_edge.runtime.station.report import summary_table

URL = f"gige://{DEVICE}"

# -- frames as cameras send them ---------------------------------------------------------------


def mosaic(bgr: np.ndarray, pattern: str) -> np.ndarray:
    """`bgr` sampled through a Bayer filter whose top-left 2x2 block is `pattern` (e.g. RGGB)."""
    channel = {"B": 0, "G": 1, "R": 2}
    raw = np.zeros(bgr.shape[:2], bgr.dtype)
    for dy in (0, 1):
        for dx in (0, 1):
            raw[dy::2, dx::2] = bgr[dy::2, dx::2, channel[pattern[2 * dy + dx]]]
    return raw


BAYER = {"RG": "RGGB", "GB": "GBRG", "GR": "GRBG", "BG": "BGGR"}


@pytest.mark.parametrize("pattern", list(BAYER))
@pytest.mark.parametrize("depth", [8, 12, 16])
def test_bayer_frames_keep_their_colour(pattern, depth):
    """A red part stays red whichever corner the sensor's mosaic starts with (a wrong pattern
    turns it blue or green), at 8 bits and deeper."""
    peak = (1 << depth) - 1
    bgr = np.zeros((16, 16, 3), np.uint16 if depth > 8 else np.uint8)
    bgr[..., 2] = peak * 3 // 4  # red
    bgr[..., 1] = peak // 8
    raw = mosaic(bgr, BAYER[pattern])
    name = f"Bayer{pattern}{depth}"
    data = raw.astype("<u2").tobytes() if depth > 8 else raw.tobytes()
    out = to_frame(data, FORMATS[name].code, 16, 16, None)
    assert out.dtype == np.uint8 and out.shape == (16, 16, 3)
    b, g, r = (int(v) for v in out[8, 8])
    assert r > 150 and g < 40 and b < 10, (name, b, g, r)
    if depth > 8:  # with the station's bit depth the frame stays 16-bit for the detector
        deep = to_frame(data, FORMATS[name].code, 16, 16, depth)
        assert deep.dtype == np.uint16 and int(deep[8, 8, 2]) == peak * 3 // 4


@pytest.mark.parametrize(
    "name,depth", [("Mono8", 8), ("Mono10", 10), ("Mono12", 12), ("Mono16", 16)]
)
def test_mono_frames_through_bit_depth(name, depth):
    ramp = (np.arange(32 * 8).reshape(8, 32) * ((1 << depth) - 1) // 255).astype(np.uint16)
    data = ramp.astype(np.uint8).tobytes() if depth == 8 else ramp.astype("<u2").tobytes()
    eight = to_frame(data, FORMATS[name].code, 32, 8, None)
    assert eight.dtype == np.uint8 and eight.shape == (8, 32)
    assert int(eight.max()) == int(ramp.max()) >> (depth - 8)  # scaled by its own depth
    if depth > 8:
        kept = to_frame(data, FORMATS[name].code, 32, 8, depth)
        assert kept.dtype == np.uint16 and np.array_equal(kept, ramp)
        assert check_depth(FORMATS[name], depth) is None
        assert f"carries {depth} bits but bit_depth is 9" in check_depth(FORMATS[name], 9)


def test_rgb_and_bgr_and_padded_rows():
    bgr = np.random.default_rng(0).integers(0, 255, (6, 10, 3), dtype=np.uint8)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    assert np.array_equal(to_frame(rgb.tobytes(), FORMATS["RGB8"].code, 10, 6, None), bgr)
    assert np.array_equal(to_frame(bgr.tobytes(), FORMATS["BGR8"].code, 10, 6, None), bgr)
    grey = bgr[..., 0]
    padded = np.zeros((6, 12), np.uint8)
    padded[:, :10] = grey  # two bytes of padding per row
    assert np.array_equal(to_frame(padded.tobytes(), FORMATS["Mono8"].code, 10, 6, None), grey)


def test_unreadable_frames_say_why():
    assert "needs 60 bytes, got 59" in to_frame(b"\0" * 59, FORMATS["Mono8"].code, 10, 6, None)
    assert "0x010c0006 is not one this runtime reads" in to_frame(
        b"\0" * 90, 0x010C0006, 10, 6, None
    )


# -- the URL -----------------------------------------------------------------------------------


def test_url_settings_parsed():
    source = parse_gige_url(
        "gige://Basler-123?exposure=5000&gain=2.5&pixel_format=BayerRG12&roi=8,16,640,480"
        "&fps=30&trigger=Line1&activation=FallingEdge&packet_size=8192"
    )
    assert source.device == "Basler-123"
    s = source.settings
    assert (s.exposure, s.gain, s.pixel_format, s.roi, s.fps) == (
        5000.0, 2.5, "BayerRG12", (8, 16, 640, 480), 30.0
    )  # fmt: skip
    assert (s.trigger, s.activation, s.packet_size) == ("line1", "FallingEdge", 8192)
    assert parse_gige_url("gige://").device is None  # the first camera found


@pytest.mark.parametrize(
    "url,message",
    [
        ("gige://x?exposur=5", "unknown setting 'exposur'; gige:// takes exposure, gain"),
        ("gige://x?roi=1,2,3", "roi must be x,y,width,height"),
        ("gige://x?exposure=-1", "exposure must be a number"),
        ("gige://x?fps=nan", "fps must be a number"),
        ("gige://x?trigger=sometimes", "trigger must be off, software or a line"),
        ("gige://x?activation=RisingEdge", "activation applies to a line trigger"),
    ],
)
def test_url_mistakes_are_one_line_errors(url, message):
    with pytest.raises(UniadError, match=message):
        parse_gige_url(url)


def test_frame_id_gaps_count_lost_frames_across_the_16_bit_wrap():
    ids = FrameIds()
    for frame_id in [65533, 65534, 65535, 1, 2, 5, 6]:  # GigE Vision 1.x ids skip 0
        ids.see(frame_id)
    assert ids.missing == 2  # 3 and 4
    ids.restart()  # a new acquisition starts its own count
    ids.see(10)
    assert ids.missing == 2


def test_a_frame_completed_late_is_no_gap():
    """Resent packets complete frame 65525 after 65532: ids 65525..65531 were counted missing
    when 65532 came; each that turns up after all is taken back, and no wrap is invented."""
    ids = FrameIds()
    for frame_id in [65523, 65524, 65532, 65525, 65530, 65533, 1, 65535, 2]:
        ids.see(frame_id)
    assert ids.missing == 6  # 65526..65529, 65531 and 65534 never came
    wide = FrameIds()  # 64-bit ids (GigE Vision 2, USB3 Vision)
    for frame_id in [70_000, 70_003, 70_001, 70_004]:
        wide.see(frame_id)
    assert wide.missing == 1


class LineTriggered(Reader):
    """Frames a camera's own I/O line took, each 30 ms before it reached the station (not
    live, so its end is the end of the run rather than a reconnect)."""

    description = "line-triggered camera"

    def __init__(self, frames: int) -> None:
        self.left = frames

    def open(self) -> None:
        pass

    def read(self):
        if not self.left:
            return None
        self.left -= 1
        time.sleep(0.01)
        return np.full((32, 32, 3), (90, 120, 150), np.uint8), ""

    def frame_triggered(self) -> float | None:
        return time.perf_counter() - 0.03

    def close(self) -> None:
        pass


def test_a_frame_the_cameras_own_trigger_took_has_its_trigger_latency(model):
    """trigger=lineN: no station trigger, yet every record says how long since its trigger."""
    config = StationConfig(cameras=[CameraConfig("cam", LineTriggered(5))], model=model)
    records = []
    with Station(config) as station:
        station.subscribe(lambda verdict: records.append(verdict.record))
        summary = station.run()
    assert len(records) == 5 and all(r.part_id is None for r in records)
    assert all(r.trigger_ms is not None and r.trigger_ms >= 30 for r in records)
    assert len(summary.cameras["cam"].trigger_ms) == 5  # the summary's percentiles


# -- on the GigE Vision simulator ---------------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    build_model(path, threshold=1e9)  # every frame OK: the tests are about frames, not scores
    return path


@pytest.fixture
def fake(tmp_path):
    camera = FakeGigeCamera(tmp_path)
    yield camera
    camera.close()


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_scores_frames_with_the_cameras_ids_and_timestamps(fake, model, tmp_path):
    log = tmp_path / "out.jsonl"
    code = run_main(
        "run", "--model", model, "--source", f"cam={URL}?roi=0,0,512,512", "--max-frames", "20",
        "--log", log,
    )  # fmt: skip
    assert code == 0
    records = read_log(log)
    assert len(records) == 20
    ids = [r["camera_frame_id"] for r in records]
    stamps = [r["camera_timestamp"] for r in records]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 20  # the device's own ids, in order
    assert stamps == sorted(stamps) and len(set(stamps)) == 20
    assert all(r["verdict"] == "OK" for r in records)


def test_settings_are_applied_and_read_back(fake):
    url = f"{URL}?exposure=2000&gain=2&fps=40&roi=0,0,256,128&packet_size=1000&pixel_format=Mono8"
    stream = FrameStream(make_reader(url)).start()
    try:
        frame = stream.get(timeout=10)
        applied = stream.reader.applied
    finally:
        stream.stop()
        stream.join(10)
    assert frame is not None and frame.image.shape == (128, 256)
    assert applied == {
        "pixel_format": "Mono8",
        "roi": [0, 0, 256, 128],
        "exposure": 2000.0,
        "gain": 2.0,
        "fps": 40.0,
        "packet_size": 1000,
        "trigger": "off",
    }


@pytest.mark.parametrize(
    "query,message",
    [
        ("exposure=1e12", r"exposure 1e\+12 is out of range; it offers 10\.\.1e\+07 µs"),
        ("pixel_format=Mono12", "pixel_format Mono12 is not offered; it offers .*Mono8.*Mono16"),
        ("trigger=line3", "trigger line3 is not offered; its trigger sources are Line0, Software"),
        ("trigger=software", "trigger=software needs a station trigger"),
        ("roi=0,0,99999,10", "roi width 99999 is out of range"),
    ],
)
def test_settings_the_camera_lacks_are_refused_at_start(fake, query, message):
    reader = make_reader(f"{URL}?{query}")
    with pytest.raises(SourceRefused, match=message):
        FrameStream(reader).start()  # a live source, yet no retry: retrying cannot help


def test_a_refused_setting_ends_run_with_one_line(fake, model, capsys):
    code = run_main("run", "--model", model, "--source", f"cam={URL}?gain=99")
    assert code == 2
    err = capsys.readouterr().err
    assert "gain 99 is out of range; it offers 0..10" in " ".join(err.split())


def test_a_camera_never_there_gives_up_within_seconds_listing_those_found(
    fake, model, tmp_path, caplog
):
    started = time.monotonic()
    code = run_main("run", "--model", model, "--source", "cam=gige://Nope-42")
    assert code == 3
    assert time.monotonic() - started < 30
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "Device 'Nope-42' not found" in said
    assert f"cameras found: {DEVICE} (Aravis Fake, 127.0.0.1)" in said


def test_a_second_station_on_the_same_camera_gets_one_clear_error(fake, model, capsys):
    first = make_reader(URL)
    first.open()
    try:
        code = run_main("run", "--model", model, "--source", f"cam={URL}", "--max-frames", "1")
    finally:
        first.close()
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{URL} ({DEVICE.removeprefix('Aravis-Fake-')}) is in use by another application" in err


def test_run_survives_the_camera_losing_power_for_five_seconds(fake, model, tmp_path):
    """The station runs as a child, so one that never recovers is ended here, not left holding
    the camera for the tests after this one."""
    log = tmp_path / "out.jsonl"
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    command = [
        sys.executable, "-m", "uniad_edge", "run", "--model", str(model),
        "--source", f"cam={URL}?fps=10&roi=0,0,256,256", "--max-frames", "40", "--log", str(log),
        "--reconnect-max-wait", "1",
    ]  # fmt: skip
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            command, stdout=stdout, stderr=stderr, env={**env_with_path(), "COLUMNS": "120"}
        )
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and len(log.read_text().splitlines()) >= 10):
            assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
            time.sleep(0.05)
        fake.kill()
        time.sleep(5)
        fake.start()
        code = proc.wait(120)
    finally:
        end(proc)
    said = err.read_text()
    assert code == 0, said
    assert len(read_log(log)) == 40  # reached its frame count on the restarted camera
    assert "stopped answering" in said
    assert f"{URL} reconnected" in said
    assert re.search(r"reconnects *│ *1 *│", out.read_text())  # the gap, counted


def test_a_discovery_beside_a_reopening_camera_harms_neither(fake):
    """Aravis's device lists are not thread safe: listings (other cameras' readers reopening,
    `discover`) beside each other and beside a camera reopening after a power blip read
    garbage ids; all go through one lock. The camera, back within seconds, answers register
    reads yet has forgotten its stream: the reader notices it lost control and reopens it."""
    stream = FrameStream(make_reader(f"{URL}?fps=10&roi=0,0,256,256"), max_backoff_s=0.5).start()
    listed: list[list[str]] = []
    failed: list[BaseException] = []
    stop = threading.Event()

    def list_cameras() -> None:
        while not stop.is_set():
            try:
                listed.append(fake.devices())
            except Exception as exc:  # noqa: BLE001 (recorded, asserted below)
                failed.append(exc)
                return

    try:
        assert stream.get(timeout=30) is not None
        fake.kill()
        listers = [threading.Thread(target=list_cameras, daemon=True) for _ in range(3)]
        for lister in listers:
            lister.start()
        time.sleep(3)
        fake.start()
        deadline = time.monotonic() + 30
        while (frame := stream.get(timeout=1)) is None or frame.image is None:
            assert time.monotonic() < deadline, f"no frame since the camera came back: {failed}"
        stop.set()
        for lister in listers:
            lister.join(30)
    finally:
        stop.set()
        stream.stop()
        stream.join(10)
    assert not failed
    assert {tuple(ids) for ids in listed} <= {(), (DEVICE,)}
    assert stream.reconnects == 1


def test_stdin_trigger_fires_the_camera_once_per_part(fake, model, tmp_path, monkeypatch):
    parts = [f"P-{i}" for i in range(1, 6)]
    stdin = io.TextIOWrapper(io.BytesIO("".join(f"{p}\n" for p in parts).encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    log = tmp_path / "out.jsonl"
    code = run_main(
        "run", "--model", model, "--source", f"cam={URL}?roi=0,0,512,512", "--trigger", "stdin",
        "--log", log,
    )  # fmt: skip
    assert code == 0
    records = read_log(log)
    assert [r["part_id"] for r in records] == parts  # exactly one frame per trigger
    assert all(r["verdict"] == "OK" for r in records)
    ids = [r["camera_frame_id"] for r in records]
    assert len(set(ids)) == 5 and ids == sorted(ids)
    assert all(r["trigger_ms"] > 0 for r in records)


def test_a_trigger_before_the_camera_is_up_is_sent_once_it_is(fake):
    """A station that boots before its camera: the part triggered meanwhile still gets the
    frame taken for it, not nothing."""
    fake.kill()
    reader = make_reader(f"{URL}?roi=0,0,256,256")
    reader.use_station_trigger()
    stream = FrameStream(reader, max_reconnects=FOREVER, backoff_s=0.2, max_backoff_s=0.5)
    stream.start()
    try:
        assert stream.state == "reconnecting"
        reader.fire()
        fake.start()
        frame = stream.get(timeout=60)
        assert frame is not None and frame.image is not None and frame.image.shape == (256, 256)
        assert stream.get(timeout=1) is None  # one trigger, one frame
    finally:
        stream.stop()
        stream.join(10)


def test_lost_packets_make_lost_frames_counted_everywhere_never_scored(model, tmp_path):
    """The simulator drops 0.3% of its packets: a frame of 190 packets arrives incomplete
    about every other time. None is scored; each is
    counted as lost, and the count reaches each verdict (the event stream's and OPC UA's
    counters), the summary and `/metrics`' source (`Station.counts`)."""
    camera = FakeGigeCamera(tmp_path, lost_per_mille=3)
    config = StationConfig(
        cameras=[CameraConfig("cam", f"{URL}?roi=0,0,512,512&fps=50")], model=model, max_frames=15
    )
    seen = []
    try:
        station = Station(config)
        station.subscribe(seen.append)
        summary = station.run()
        counts = station.counts()["cam"]
        station.close()
    finally:
        camera.close()
    reader = station.cameras["cam"].stream.reader
    assert summary.frames == 15 and summary.errors == 0  # only whole frames were scored
    assert reader.incomplete > 0 and reader.lost >= reader.incomplete
    assert summary.states["cam"].lost == counts.lost == reader.lost
    last = seen[-1]
    assert 0 < last.counts.lost <= reader.lost
    assert camera_values(last.record, last.counts)["LostCount"] == last.counts.lost
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(summary_table(summary))
    assert re.search(rf"lost \(never delivered\) *│ *{reader.lost} *│", console.export_text())


def test_cameras_lists_the_simulator(fake, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "220")
    assert run_main("cameras") == 0
    out = capsys.readouterr().out
    for text in (DEVICE, "Aravis", "Fake", "GV01", "GigEVision", "127.0.0.1", "Mono8", "Software"):
        assert text in out


def test_an_empty_device_opens_the_first_camera_found(fake):
    reader = make_reader("gige://?pixel_format=Mono8")
    reader.open()
    try:
        assert reader.applied["pixel_format"] == "Mono8"
    finally:
        reader.close()


def test_a_line_trigger_is_applied_and_excludes_a_station_trigger(fake):
    reader = make_reader(f"{URL}?trigger=line0&activation=RisingEdge")
    reader.open()
    try:
        assert reader.applied["trigger"] == "Line0 RisingEdge"  # read back from the camera
    finally:
        reader.close()
    station_triggered = make_reader(f"{URL}?trigger=line0")
    station_triggered.use_station_trigger()
    with pytest.raises(SourceRefused, match="trigger=line0 lets the camera's line trigger"):
        station_triggered.open()
    wrong = make_reader(f"{URL}?trigger=line0&activation=AnyEdge")
    with pytest.raises(SourceRefused, match="activation AnyEdge is not offered; it offers Rising"):
        wrong.open()


def test_settings_from_a_station_file(fake, model, tmp_path, caplog):
    """In the source URL's query, or as the camera's genicam table."""
    station = tmp_path / "station.toml"
    station.write_text(
        f'model = "{model}"\nlog = "out.jsonl"\nmax_frames = 3\n\n'
        f'[cameras.top]\nsource = "{URL}?roi=0,0,256,128"\n'
        "[cameras.top.genicam]\nexposure = 3000\ngain = 1.5\n"
    )
    caplog.set_level("INFO", logger="uniad_edge.runtime.capture.gige")
    assert run_main("run", "--station", station) == 0
    assert len(read_log(tmp_path / "out.jsonl")) == 3
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "roi [0, 0, 256, 128], exposure 3000.0, gain 1.0" in said  # read back
    assert "gain 1.5 asked, the camera set 1 (its own steps or limits)" in said  # integer gain


@pytest.mark.parametrize(
    "camera,message",
    [
        ('source = "gige://x?gain=1"\n[cameras.top.genicam]\ngain = 2', "gain is both in the"),
        ('source = "gige://x"\n[cameras.top.genicam]\ngian = 2', "unknown setting 'gian'"),
        ('source = "gige://x"\n[cameras.top.genicam]\nroi = [1, 2]', "roi must be x,y,width"),
        ('source = "rtsp://h/s"\n[cameras.top.genicam]\ngain = 2', "need a gige:// source"),
    ],
)
def test_station_file_genicam_mistakes(tmp_path, camera, message):
    station = tmp_path / "station.toml"
    station.write_text(f"[cameras.top]\n{camera}\n")
    with pytest.raises(UniadError, match=message):
        load_station_file(station)
