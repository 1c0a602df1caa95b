"""Half-open connections cannot exhaust `serve` (issue 28 item 4): a request head has a
deadline, connections are capped (the one waiting longest for its head makes room), and running
out of file descriptors is one log line a minute, not a traceback per failed accept. Real
sockets on 127.0.0.1, a bounded number of them."""

from __future__ import annotations

import contextlib
import socket
import time

import httpx
import pytest
from onnx_fixtures import build_model, defect_frame
from serve_helpers import png, running, serve_process

from uniad_edge.errors import UniadError
from uniad_edge.serve.config import ServeConfig

PARTIAL_HEAD = b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # the blank line never comes


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("conns") / "m.onnx"
    build_model(path)
    return path


def half_open(url: str, count: int) -> list[socket.socket]:
    host, port = url.removeprefix("http://").split(":")
    socks = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(PARTIAL_HEAD)
        socks.append(sock)
    return socks


def closed_by_server(sock: socket.socket, wait_s: float) -> bool:
    sock.settimeout(wait_s)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def health_within(url: str, seconds: float) -> float:
    """Seconds until /v1/health answers 200 (each try may itself wait 2 s)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"/v1/health did not answer within {seconds} s")


def test_half_open_connections_over_the_cap_leave_health_answering(model, tmp_path):
    """A long head deadline, so every connection closed here made room under the cap."""
    args = ("--model", model, "--max-connections", 50, "--header-timeout", 120)
    with serve_process(tmp_path, *args, open_files=256) as srv:
        socks = half_open(srv.url, 200)
        try:
            health_within(srv.url, 30)
            assert all(closed_by_server(s, 10) for s in socks[:140])  # the oldest made room
            assert not any(closed_by_server(s, 0.05) for s in socks[-40:])  # the newest wait
        finally:
            for sock in socks:
                sock.close()
    err = srv.stderr
    assert "Traceback" not in err
    assert err.count("connection limit (50, --max-connections) reached") == 1  # a minute's worth


def test_out_of_file_descriptors_is_one_line_and_the_server_recovers(model, tmp_path):
    """The cap above the open-file limit: accept() fails with EMFILE, the half-open
    connections time out, and the server answers again."""
    args = ("--model", model, "--max-connections", 1000, "--header-timeout", 2)
    with serve_process(tmp_path, *args, open_files=200) as srv:
        socks = []
        with contextlib.suppress(OSError):  # the server stops accepting; connects may fail
            socks = half_open(srv.url, 300)
        try:
            assert health_within(srv.url, 30) < 30
        finally:
            for sock in socks:
                sock.close()
        time.sleep(0.5)
    err = srv.stderr
    assert "Traceback" not in err and "Too many open files" not in err
    assert err.count("out of file descriptors") == 1
    assert "the open-file limit (200) is below" in err  # said once at start
    assert len(err.splitlines()) < 20


def test_a_slow_request_head_is_cut_off_and_a_busy_connection_is_not(model):
    with running(model, header_timeout_s=1.0, max_connections=4) as srv:
        (slow,) = half_open(srv.url, 1)
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 15 and not closed:  # a byte at a time: slowloris
            with contextlib.suppress(OSError):
                slow.sendall(b"X")
            closed = closed_by_server(slow, 0.3)
        assert closed and time.monotonic() - started > 0.9  # not before its deadline
        slow.close()
        with httpx.Client(base_url=srv.url, timeout=10) as client:  # keep-alive, in use
            assert client.get("/v1/health").status_code == 200
            time.sleep(2)  # past the head deadline: kept-alive connections close on their own
            assert client.get("/v1/health").status_code == 200  # (httpx reconnects)
            with client.stream("GET", "/v1/events") as events:  # a long request is busy
                others = half_open(srv.url, 6)  # over the cap: they make room among themselves
                try:
                    lines = events.iter_lines()
                    assert next(lines) == "event: snapshot"
                    time.sleep(1.5)
                    assert client.get("/v1/health").status_code == 200
                finally:
                    for sock in others:
                        sock.close()


def test_connection_limits_are_checked(model):
    for bad in ({"max_connections": 0}, {"header_timeout_s": 0.0}, {"max_header_kb": 0}):
        with pytest.raises(UniadError):
            ServeConfig.from_options(model=model, **bad)


SLOW_POST = (
    b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
    b"Content-Length: 100000\r\n\r\n"
)


def test_a_body_trickled_a_byte_at_a_time_is_cut_off_at_its_deadline(model):
    """The head arrives in time, the body never does: the connection closes after
    `body_timeout_s`, not before, and the server keeps scoring whole requests."""
    frame = png(defect_frame((48, 64)))
    with running(model, header_timeout_s=5.0, body_timeout_s=1.0) as srv:
        host, port = srv.url.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)), timeout=10)
        try:
            slow.sendall(SLOW_POST)
            started = time.monotonic()
            closed = False
            while time.monotonic() - started < 15 and not closed:
                with contextlib.suppress(OSError):
                    slow.sendall(b"\x00")
                closed = closed_by_server(slow, 0.3)
            assert closed and time.monotonic() - started > 0.9  # not before its deadline
        finally:
            slow.close()
        reply = httpx.post(f"{srv.url}/v1/score", content=frame, timeout=30,
                           headers={"content-type": "image/png"})  # fmt: skip
        assert reply.status_code == 200 and reply.json()["verdict"] == "NG"
    with pytest.raises(UniadError, match="--body-timeout"):
        ServeConfig.from_options(model=model, body_timeout_s=0.0)
