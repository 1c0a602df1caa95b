"""The station's OPC UA server against real clients on 127.0.0.1: asyncua subscribes, reads and
calls Trigger; node-opcua reads the same values; every value equals the JSONL record of its
frame; frozen, vanished and reconnecting clients; bind failures and the security rules."""

from __future__ import annotations

import asyncio
import bisect
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model, named_model
from opcua_helpers import (
    CAMERA_VARIABLES,
    VERDICT_VARIABLES,
    Collector,
    assert_matches,
    counts_until,
    expected_values,
    namespace,
    node_read,
    node_trigger,
    read_camera,
    read_log,
    run,
    same,
    subscribe,
)
from ports import free_port, on_a_free_port
from runtime_helpers import Conveyor, PacedCamera, write_folder

from uniad_edge.errors import UniadError
from uniad_edge.runtime.capture import Reader
from uniad_edge.runtime.opcua.config import NAMESPACE_URI, OpcuaConfig
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig
from uniad_edge.runtime.station.file import load_station_file

WAIT_S = 120.0  # generous: the machine may be busy


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    build_model(path, threshold=40.0)
    return path


def make_station(model: Path, tmp_path: Path, cameras: dict[str, Reader], **options) -> Station:
    """A station with an OPC UA server: `options["opcua"]` (a config, or a function of a free
    port giving one), by default on a free loopback port."""
    opcua = options.pop("opcua", None) or (lambda p: OpcuaConfig(f"opc.tcp://127.0.0.1:{p}/uniad"))

    def start(port: int) -> Station:
        config = StationConfig(
            cameras=[CameraConfig(name, reader) for name, reader in cameras.items()],
            model=model,
            log=tmp_path / "line.jsonl",
            opcua=opcua(port) if callable(opcua) else opcua,
            **options,
        )
        return Station(config)

    return on_a_free_port(start) if callable(opcua) else start(0)


def wait_for(condition, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def finish(station: Station):
    station.stop()
    summary = station.wait(WAIT_S)
    station.close()
    return summary


def test_subscriber_and_reads_see_whole_verdicts_equal_to_their_jsonl_records(model, tmp_path):
    conveyor = Conveyor()
    station = make_station(model, tmp_path, {"top": conveyor})
    url = station.config.opcua.url
    collector = Collector()
    reads: list[dict] = []

    async def client() -> None:
        from asyncua import Client

        async with Client(url) as c:
            idx = await namespace(c)
            await subscribe(
                c, collector, [f"ns={idx};s=Cameras.top.{n}" for n in VERDICT_VARIABLES]
            )
            deadline = time.monotonic() + WAIT_S
            while len(reads) < 60 and time.monotonic() < deadline:
                values = await read_camera(c, idx, "top")
                if values["FrameIndex"] > 0:
                    reads.append(values)
                if len(reads) == 30:
                    conveyor.defective = True
                await asyncio.sleep(0.01)

    station.start()
    try:
        run(client())
    finally:
        summary = finish(station)
    records = [r for r in read_log(tmp_path / "line.jsonl") if r["camera"] == "top"]
    by_index = {r["index"]: r for r in records}
    assert len(reads) == 60
    assert {v["Verdict"] for v in reads} == {"OK", "NG"}
    for values in reads:  # one Read call: every value from the same verdict
        record = by_index[values["FrameIndex"]]
        assert_matches(values, record)
        for name, count in counts_until(records, "top", record["index"]).items():
            assert values[name] == count
        assert values["State"] in ("capturing", "stopped")
    stamps = [r["timestamp"] for r in records]
    frames = {key for key, _, _ in collector.changes if key.endswith("FrameIndex")}
    assert frames and len(collector.changes) > 100
    for key, value, stamp in collector.changes:  # every change carries its frame's time
        if stamp < stamps[0] - 2e-6:  # a subscription's first answer: the value before any frame
            epoch = getattr(value, "year", None) == 1601  # OPC UA's null DateTime
            assert value in (None, "", 0) or value != value or epoch, (key, value)
            continue
        i = bisect.bisect_left(stamps, stamp - 2e-6)
        record = records[i]
        assert abs(record["timestamp"] - stamp) < 2e-6, (key, stamp)
        name = key.rsplit(".", 1)[1]
        if name in ("OkCount", "NgCount", "ErrorCount", "UnscoredCount", "LostCount"):
            assert value == counts_until(records, "top", record["index"])[name]
        else:
            want = expected_values(record)[name]
            got = value.timestamp() if name == "SourceTimestamp" else value
            assert same(got, want), (name, got, want)
    assert summary.sinks["OPC UA verdicts written"] >= 60


def test_trigger_method_returns_the_next_frames_verdict(model, tmp_path):
    conveyor = Conveyor()
    station = make_station(model, tmp_path, {"top": conveyor}, trigger_only=True)
    url = station.config.opcua.url

    async def client() -> tuple[list, list, dict, dict]:
        from asyncua import Client

        async with Client(url) as c:
            idx = await namespace(c)
            camera = c.get_node(f"ns={idx};s=Cameras.top")
            good = await camera.call_method(f"{idx}:Trigger", "P-17")
            conveyor.defective = True
            bad = await camera.call_method(f"{idx}:Trigger", "P-18")
            deadline = time.monotonic() + WAIT_S
            values = await read_camera(c, idx, "top")
            while values["FrameIndex"] != bad[2] and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                values = await read_camera(c, idx, "top")
            names = ("Name", "ModelId", "ThresholdProvenance", "Uptime")
            nodes = [c.get_node(f"ns={idx};s=Station.{n}") for n in names]
            station_values = dict(zip(names, await c.read_values(nodes), strict=True))
            return good, bad, values, station_values

    station.start()
    try:
        good, bad, values, station_values = run(client())
    finally:
        finish(station)
    records = {r["part_id"]: r for r in read_log(tmp_path / "line.jsonl")}
    assert good[0] == "OK" and bad[0] == "NG"
    assert (good[1], good[2]) == (records["P-17"]["score"], records["P-17"]["index"])
    assert (bad[1], bad[2]) == (records["P-18"]["score"], records["P-18"]["index"])
    assert_matches(values, records["P-18"])
    assert (values["OkCount"], values["NgCount"], values["ErrorCount"]) == (1, 1, 0)
    assert station_values["Name"] == "station"
    assert station_values["ModelId"] == records["P-18"]["model"]
    assert station_values["ThresholdProvenance"] == station.threshold_provenance
    assert station_values["Uptime"] >= 0


REFUSED_TRIGGERS = {  # arguments -> the status Trigger answers
    "none": ((), "BadArgumentsMissing"),
    "two": (("P-1", "P-2"), "BadTooManyArguments"),
    "int32": ((("Int32", 42),), "BadInvalidArgument"),
    "bytes": ((("ByteString", b"P-1"),), "BadInvalidArgument"),
    "array": ((("String", ["P-1", "P-2"]),), "BadInvalidArgument"),
    "control": (("P\n1\x00",), "BadInvalidArgument"),
    "long": (("P" * 10_000,), "BadInvalidArgument"),
}


def test_trigger_refuses_wrong_arguments_and_part_ids_stdin_would_refuse(model, tmp_path, caplog):
    """Exactly one String that passes the part-id rule; anything else answers a Bad status in
    one log line, scores nothing and leaves the method usable."""
    conveyor = Conveyor()
    station = make_station(model, tmp_path, {"top": conveyor}, trigger_only=True)
    url = station.config.opcua.url

    async def client() -> tuple[dict[str, str], list]:
        from asyncua import Client, ua

        answers: dict[str, str] = {}
        async with Client(url) as c:
            idx = await namespace(c)
            camera = c.get_node(f"ns={idx};s=Cameras.top")
            method = c.get_node(f"ns={idx};s=Cameras.top.Trigger")
            for case, (arguments, _) in REFUSED_TRIGGERS.items():
                variants = [
                    ua.Variant(a[1], getattr(ua.VariantType, a[0]), is_array=isinstance(a[1], list))
                    if isinstance(a, tuple)
                    else ua.Variant(a, ua.VariantType.String)
                    for a in arguments
                ]
                request = ua.CallMethodRequest(
                    ObjectId=camera.nodeid, MethodId=method.nodeid, InputArguments=variants
                )
                (result,) = await c.uaclient.call([request])
                answers[case] = result.StatusCode.name
            good = await camera.call_method(f"{idx}:Trigger", "P-17")
        return answers, good

    station.start()
    try:
        answers, good = run(client())
    finally:
        finish(station)
    assert answers == {case: status for case, (_, status) in REFUSED_TRIGGERS.items()}
    records = read_log(tmp_path / "line.jsonl")
    assert [r["part_id"] for r in records] == ["P-17"] and good[0] == "OK"
    logged = [r for r in caplog.records if r.name.startswith(("asyncua", "uniad_edge"))]
    assert not [r for r in logged if r.exc_info or r.levelname == "ERROR"], logged
    refused = [r.getMessage() for r in logged if "Trigger on top refused" in r.getMessage()]
    assert len(refused) == len(REFUSED_TRIGGERS)
    assert all("\n" not in m and "\x00" not in m and len(m) < 300 for m in refused), refused


def test_node_opcua_gets_the_same_refusals_from_trigger(model, tmp_path):
    """Another stack's client: wrong arguments are refused with the statuses asyncua got."""
    station = make_station(model, tmp_path, {"top": Conveyor()}, trigger_only=True)
    url = station.config.opcua.url
    station.start()
    try:
        answers = {
            "none": node_trigger(url, "top", []),
            "int32": node_trigger(url, "top", [("Int32", 42)]),
            "control": node_trigger(url, "top", [("String", "P\n1")]),
            "two": node_trigger(url, "top", [("String", "P-1"), ("String", "P-2")]),
            "good": node_trigger(url, "top", [("String", "P-17")]),
        }
    finally:
        finish(station)
    assert {k: a["status"] for k, a in answers.items()} == {
        "none": "BadArgumentsMissing",
        "int32": "BadInvalidArgument",
        "control": "BadInvalidArgument",
        "two": "BadTooManyArguments",
        "good": "Good",
    }
    assert answers["int32"]["inputArgumentResults"] == ["BadTypeMismatch"]
    assert [r["part_id"] for r in read_log(tmp_path / "line.jsonl")] == ["P-17"]


def test_node_opcua_reads_the_same_values_as_asyncua_and_the_log(model, tmp_path):
    conveyor = Conveyor()
    conveyor.defective = True
    station = make_station(model, tmp_path, {"top": conveyor}, trigger_only=True)
    url = station.config.opcua.url
    station.start()
    try:
        record = station.trigger("top", part_id="P-99", timeout=WAIT_S)

        async def read() -> dict:
            from asyncua import Client

            async with Client(url) as c:
                idx = await namespace(c)
                values = await read_camera(c, idx, "top")
                while values["FrameIndex"] != record["index"]:
                    await asyncio.sleep(0.02)
                    values = await read_camera(c, idx, "top")
                return values

        python_values = run(asyncio.wait_for(read(), WAIT_S))
        keys = [f"Cameras.top.{name}" for name in CAMERA_VARIABLES] + ["Station.ModelId"]
        node_values = node_read(url, keys)
    finally:
        finish(station)
    for name in CAMERA_VARIABLES:
        got = node_values[f"Cameras.top.{name}"]
        assert got["status"] == "Good"
        value = float("nan") if got["value"] == "NaN" else got["value"]
        want = python_values[name]
        if name == "SourceTimestamp":  # JavaScript dates hold milliseconds
            assert abs(value - want) < 1e-3
        else:
            assert same(value, want), (name, value, want)
        if name != "State":
            assert abs(got["sourceTimestamp"] - record["timestamp"]) < 1e-3, name
    assert_matches(python_values, record)
    assert node_values["Station.ModelId"]["value"] == record["model"]


FROZEN_CLIENT = """
import asyncio, sys
from asyncua import Client
async def main(url, ns_uri):
    client = Client(url)
    await client.connect()
    idx = await client.get_namespace_index(ns_uri)
    sub = await client.create_subscription(5, None)
    names = sys.argv[3:]
    await sub.subscribe_data_change([client.get_node(f"ns={idx};s=Cameras.top.{n}") for n in names])
    print("subscribed", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_frozen_and_vanished_clients_never_stall_scoring_and_clients_reconnect(model, tmp_path):
    station = make_station(model, tmp_path, {"top": Conveyor()})
    url = station.config.opcua.url

    async def frame_index() -> int:
        from asyncua import Client

        async with Client(url) as c:  # a new connection each time: disconnect and reconnect
            idx = await namespace(c)
            return await c.get_node(f"ns={idx};s=Cameras.top.FrameIndex").read_value()

    def frames() -> int:
        return station.state("top").frames

    station.start()
    frozen = subprocess.Popen(
        [sys.executable, "-c", FROZEN_CLIENT, url, NAMESPACE_URI, *VERDICT_VARIABLES],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert frozen.stdout is not None
        assert frozen.stdout.readline().strip() == "subscribed"
        frozen.send_signal(signal.SIGSTOP)  # holds its socket, reads nothing, answers nothing
        before = frames()
        wait_for(lambda: frames() > before + 300, "scoring to go on past a frozen client")
        first = run(frame_index())
        assert first > before
        frozen.kill()  # vanishes without closing its session
        frozen.wait(timeout=WAIT_S)
        after_kill = frames()
        wait_for(lambda: frames() > after_kill + 100, "scoring after the client vanished")
        second = run(frame_index())
        assert second > first
    finally:
        if frozen.poll() is None:
            frozen.kill()
            frozen.wait()
        summary = finish(station)
    assert summary.frames >= 400


def test_clients_beyond_max_clients_are_refused_until_one_leaves(model, tmp_path):
    """Idle TCP connections (no OPC UA hello) take their places; the next client is refused,
    and once they close a client reads again: the server's descriptors stay bounded."""
    config = lambda p: OpcuaConfig(f"opc.tcp://127.0.0.1:{p}/uniad", max_clients=2)  # noqa: E731
    station = make_station(model, tmp_path, {"top": Conveyor()}, opcua=config)
    url = station.config.opcua.url
    host, port = station.config.opcua.address

    async def frame_index() -> int:
        from asyncua import Client

        async with Client(url, timeout=5) as c:
            idx = await namespace(c)
            return await c.get_node(f"ns={idx};s=Cameras.top.FrameIndex").read_value()

    station.start()
    idle = [socket.create_connection((host, port), timeout=10) for _ in range(2)]
    try:
        time.sleep(0.5)  # both accepted by the server's loop
        with pytest.raises(Exception):  # noqa: B017 - asyncua raises several types when closed on
            run(frame_index())
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + WAIT_S
    while True:  # the server notices the closed sockets on its next read
        try:
            assert run(frame_index()) >= 0
            break
        except AssertionError:
            raise
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    finish(station)
    with pytest.raises(UniadError, match="max_clients"):
        OpcuaConfig("opc.tcp://127.0.0.1:4840/uniad", max_clients=0)


class OpenedReader(Reader):
    """A file-like source that notes whether the station ever opened it."""

    description = "counted source"

    def __init__(self) -> None:
        self.opened = False

    def open(self) -> None:
        self.opened = True

    def read(self):
        return None, ""

    def close(self) -> None:
        pass


def test_a_server_that_cannot_bind_fails_in_one_line_before_any_camera_opens(model, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        reader = OpenedReader()
        config = OpcuaConfig(f"opc.tcp://127.0.0.1:{port}/uniad")
        with pytest.raises(UniadError) as caught:
            make_station(model, tmp_path, {"top": reader}, opcua=config)
    message = str(caught.value)
    assert f"cannot listen on 127.0.0.1:{port}" in message and "\n" not in message
    assert not reader.opened


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "plc-gateway.example"])
def test_off_loopback_without_credentials_is_refused_in_one_line(host):
    with pytest.raises(UniadError, match="anonymous access is allowed on 127.0.0.1 only"):
        OpcuaConfig(f"opc.tcp://{host}:4840/uniad")
    with pytest.raises(UniadError, match="together"):
        OpcuaConfig(f"opc.tcp://{host}:4840/uniad", user="plc")
    with pytest.raises(UniadError, match="not opc.tcp"):
        OpcuaConfig(f"http://{host}:4840/uniad", user="plc", password="pw")
    assert OpcuaConfig(f"opc.tcp://{host}:4840", user="plc", password="pw").anonymous is False


async def _connect_and_read(url: str, user: str | None = None, password: str | None = None):
    from asyncua import Client

    client = Client(url, timeout=20)
    if user is not None:
        client.set_user(user)
        client.set_password(password)
    async with client:
        idx = await namespace(client)
        return await client.get_node(f"ns={idx};s=Station.Name").read_value()


def test_off_loopback_server_needs_its_user_and_password(model, tmp_path):
    def config(port: int) -> OpcuaConfig:
        return OpcuaConfig(f"opc.tcp://0.0.0.0:{port}/uniad", user="plc", password="s3cret")

    station = make_station(model, tmp_path, {"top": Conveyor()}, opcua=config)
    url = f"opc.tcp://127.0.0.1:{station.config.opcua.address[1]}/uniad"
    try:
        for user, password in ((None, None), ("plc", "wrong"), ("admin", "s3cret")):
            with pytest.raises(Exception):  # noqa: B017 (asyncua raises several kinds)
                run(_connect_and_read(url, user, password))
        assert run(_connect_and_read(url, "plc", "s3cret")) == "station"
    finally:
        station.close()


def test_certificate_only_server_offers_basic256sha256_and_no_open_endpoint(model, tmp_path):
    from asyncua import Client, ua
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    def make_cert(name: str, usage) -> tuple[Path, Path]:
        cert, key = tmp_path / f"{name}.der", tmp_path / f"{name}.pem"
        run(
            setup_self_signed_certificate(
                key, cert, f"urn:uniad-edge:test:{name}", socket.gethostname(), [usage], {}
            )
        )
        return cert, key

    server_cert, server_key = make_cert("server", ExtendedKeyUsageOID.SERVER_AUTH)
    client_cert, client_key = make_cert("client", ExtendedKeyUsageOID.CLIENT_AUTH)

    def config(port: int) -> OpcuaConfig:
        return OpcuaConfig(f"opc.tcp://0.0.0.0:{port}/uniad", cert=server_cert, key=server_key)

    station = make_station(model, tmp_path, {"top": Conveyor()}, opcua=config)
    url = f"opc.tcp://127.0.0.1:{station.config.opcua.address[1]}/uniad"

    async def secure_read() -> tuple[list, str]:
        client = Client(url, timeout=20)
        endpoints = await client.connect_and_get_server_endpoints()
        policies = sorted({e.SecurityPolicyUri.rsplit("#", 1)[1] for e in endpoints})
        client.application_uri = "urn:uniad-edge:test:client"
        await client.set_security_string(
            f"Basic256Sha256,SignAndEncrypt,{client_cert},{client_key}"
        )
        async with client:
            idx = await namespace(client)
            name = await client.get_node(f"ns={idx};s=Station.Name").read_value()
        return policies, name

    try:
        with pytest.raises(Exception):  # noqa: B017 (no SecurityPolicy None endpoint)
            run(_connect_and_read(url))
        policies, name = run(secure_read())
        assert policies == ["Basic256Sha256"] and name == "station"
        assert ua.SecurityPolicyType  # asyncua's policies were used, not a stub
    finally:
        station.close()


def test_four_cameras_at_30_fps_with_a_subscriber_hand_over_every_verdict(model, tmp_path):
    names = [f"cam{i}" for i in range(4)]
    station = make_station(model, tmp_path, {n: PacedCamera(30) for n in names})
    url = station.config.opcua.url
    collector = Collector()
    subscribed, done = threading.Event(), threading.Event()

    async def subscriber() -> None:
        from asyncua import Client

        async with Client(url) as c:
            idx = await namespace(c)
            await subscribe(c, collector, [f"ns={idx};s=Cameras.{n}.FrameIndex" for n in names])
            subscribed.set()
            while not done.is_set():
                await asyncio.sleep(0.05)

    client = threading.Thread(target=run, args=(subscriber(),), daemon=True)
    station.start()
    client.start()
    try:
        wait_for(subscribed.is_set, "the subscription")
        start = {n: s.frames for n, s in station.states().items()}
        wait_for(
            lambda: all(s.frames >= start[n] + 60 for n, s in station.states().items()),
            "2 s of frames from every camera",
        )
    finally:
        done.set()
        client.join(WAIT_S)
        summary = finish(station)
    records = read_log(tmp_path / "line.jsonl")
    for name in names:
        indices = {r["index"] for r in records if r["camera"] == name}
        assert len(indices) == summary.cameras[name].frames
        seen = [v for key, v, _ in collector.changes if key == f"Cameras.{name}.FrameIndex"]
        assert len(seen) >= 20 and seen == sorted(seen)
        assert set(seen) - {0} <= indices
    handed_over = summary.sinks["OPC UA verdicts written"] + summary.sinks.get(
        "OPC UA verdicts superseded", 0
    )
    assert handed_over == sum(s.frames for s in summary.cameras.values())


def test_run_refuses_an_open_opcua_endpoint_off_loopback_in_one_line(model, tmp_path, capsys):
    folder = write_folder(tmp_path / "frames", good=2, bad=0)
    code = run_main(
        "run", "--model", model, "--source", folder, "--opcua", "opc.tcp://0.0.0.0:4840/uniad"
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "anonymous access is allowed on 127.0.0.1 only" in err
    assert len(err.splitlines()) == 1


def test_run_with_a_taken_opcua_port_fails_in_one_line_before_scoring(model, tmp_path, capsys):
    folder = write_folder(tmp_path / "frames", good=2, bad=0)
    log = tmp_path / "line.jsonl"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        url = f"opc.tcp://127.0.0.1:{port}/uniad"
        code = run_main("run", "--model", model, "--source", folder, "--log", log, "--opcua", url)
    err = capsys.readouterr().err.strip()
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err
    assert len(err.splitlines()) == 1
    assert not log.exists() or log.read_text() == ""


def test_run_serves_verdicts_over_opcua_from_a_station_file(model, tmp_path, capsys):
    """`[opcua]` in station.toml starts the server; run's summary counts what it wrote."""
    folder = write_folder(tmp_path / "frames", good=3, bad=3)
    with pytest.raises(UniadError, match=r"\[opcua\] needs url"):
        bad = tmp_path / "bad.toml"
        bad.write_text(f'[cameras.top]\nsource = "{folder}"\n[opcua]\nuser = "plc"\n')
        load_station_file(bad)
    station_file = tmp_path / "station.toml"
    for _ in range(3):  # a port another process took between choosing and binding: again
        port = free_port()
        station_file.write_text(
            f'name = "line7"\nmodel = "{model}"\nlog = "line.jsonl"\n'
            f'[cameras.top]\nsource = "{folder}"\n'
            f'[opcua]\nurl = "opc.tcp://127.0.0.1:{port}/uniad"\n'
        )
        config = load_station_file(station_file)
        assert config.opcua is not None and config.opcua.address == ("127.0.0.1", port)
        code = run_main("run", "--station", station_file)
        if code != 2 or "already in use" not in capsys.readouterr().err:
            break
    assert code == 0
    assert len(read_log(tmp_path / "line.jsonl")) == 6
    out = capsys.readouterr().out
    assert "OPC UA verdicts written" in out and "OPC UA write errors" not in out


def test_serve_opcua_needs_cameras(model, capsys):
    pytest.importorskip("fastapi")
    code = run_main("serve", "--model", model, "--opcua", "opc.tcp://127.0.0.1:4841/uniad")
    assert code == 2 and "--opcua serves cameras' verdicts" in capsys.readouterr().err


def test_opcua_model_ids_follow_a_model_swap(tmp_path):
    first = named_model(tmp_path / "a.onnx", "model-a")
    second = named_model(tmp_path / "b.onnx", "model-b", pool=3)
    station = make_station(first, tmp_path, {"top": Conveyor()})
    url = station.config.opcua.url

    async def model_ids() -> tuple[str, ...]:
        from asyncua import Client

        async with Client(url) as c:
            idx = await namespace(c)
            keys = ("Station.ModelId", "Cameras.top.ModelId", "Station.ThresholdProvenance")
            values = await c.read_values([c.get_node(f"ns={idx};s={k}") for k in keys])
            return tuple(values[:2])

    station.start()
    try:
        assert run(model_ids())[0] == "model-a"
        assert station.swap_model(second).result(WAIT_S) == "model-b"
        wait_for(lambda: run(model_ids()) == ("model-b", "model-b"), "ModelId to change")
    finally:
        finish(station)
