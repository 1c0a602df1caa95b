"""`uniad-edge serve` as a user runs it: a subprocess with torch unimportable, SIGTERM while a
request is in flight (answered, log flushed, cameras released, exit 0), and the refusal of a
non-loopback address without a token."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from cli_helpers import end, run_main
from onnx_fixtures import build_model, defect_frame, good_frame
from ports import free_port, on_a_free_port
from runtime_helpers import write_video
from serve_helpers import png, running

ROOT = Path(__file__).resolve().parents[1]
TORCH_FREE_MAIN = """
import sys
for name in ("torch", "efficientnet_pytorch"):
    sys.modules[name] = None  # any import of them now fails
from uniad_edge.cli import main
sys.argv = ["uniad-edge", "serve", *sys.argv[1:]]
try:
    main()
finally:
    leaked = [m for m in ("torch", "efficientnet_pytorch") if sys.modules.get(m) is not None]
    print("torch-free" if not leaked else f"imported {leaked}", flush=True)
"""


def test_sigterm_answers_in_flight_requests_and_exits_cleanly(tmp_path):
    model = tmp_path / "slow.onnx"
    build_model(model, input_size=(128, 128), extra_work=300)  # ~40 ms per image, 1 thread
    video = write_video(tmp_path / "line.mp4", good=3, bad=2)
    log = tmp_path / "verdicts.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}

    def start(port: int) -> tuple[subprocess.Popen, str]:
        args = ["--model", model, "--port", port, "--source", f"top={video}", "--log", log]
        args += ["--max-batch", "2", "--threads", "1"]
        proc = subprocess.Popen(
            [sys.executable, "-c", TORCH_FREE_MAIN, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]  # "already in use": another port
            try:
                if httpx.get(f"{url}/v1/health").status_code == 200:
                    return proc, url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                end(proc)
                raise AssertionError("server did not come up")
            time.sleep(0.1)

    proc, url = on_a_free_port(start)
    try:
        stream_lines: list[str] = []

        def follow_events() -> None:  # an open dashboard must not hold the shutdown up
            with httpx.stream("GET", f"{url}/v1/events", timeout=30) as stream:
                stream_lines.extend(stream.iter_lines())

        follower = threading.Thread(target=follow_events)
        follower.start()
        images = [(defect_frame if i % 4 == 0 else good_frame)((128, 128), i) for i in range(16)]
        files = [("file", (f"{i}.png", png(image), "image/png")) for i, image in enumerate(images)]
        answer: dict = {}

        def post() -> None:
            response = httpx.post(f"{url}/v1/score", files=files, timeout=60)
            answer["status"], answer["body"] = response.status_code, response.json()

        poster = threading.Thread(target=post)
        poster.start()
        while httpx.get(f"{url}/v1/health").json()["queue_depth"] == 0:  # the request is in
            assert poster.is_alive(), answer
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        poster.join(10)
        follower.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "graceful shutdown exceeded" not in err  # the open event stream did not hold it up
    assert answer["status"] == 200
    results = answer["body"]["results"]
    assert [r["verdict"] for r in results] == ["NG" if i % 4 == 0 else "OK" for i in range(16)]
    assert not follower.is_alive() and stream_lines[0] == "event: snapshot"
    assert "torch-free" in out and "Traceback" not in err
    assert "uniad-edge serve" in out and "station" in out  # the summary tables
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(r["camera"] == "api" for r in records) == 16  # every answer is in the log
    assert sum(r["camera"] == "top" for r in records) == 5


def test_non_loopback_host_needs_a_token(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    build_model(model)
    assert run_main("serve", "--model", model, "--host", "0.0.0.0") == 2
    assert "--token" in capsys.readouterr().err
    assert run_main("serve", "--model", model, "--token", "short") == 2
    assert "at least 8" in capsys.readouterr().err
    assert run_main("serve", "--model", model, "--station", tmp_path / "s.toml") == 2
    assert "s.toml not found" in capsys.readouterr().err


def test_port_in_use_is_a_one_line_error(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    build_model(model)
    with running(model) as srv:
        port = srv.service.config.port
        assert run_main("serve", "--model", model, "--port", port) == 2
    err = capsys.readouterr().err
    assert f"could not listen on 127.0.0.1:{port}" in err and "Traceback" not in err
    assert "serving" not in err  # it never served


def test_port_is_checked_before_the_model_is_loaded(tmp_path, capsys):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"garbage")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run_main("serve", "--model", broken, "--port", port) == 2
    err = capsys.readouterr().err
    assert f"could not listen on 127.0.0.1:{port}" in err and "serving" not in err
    assert "cannot load" not in err  # the port was checked first: no model load was wasted
    assert run_main("serve", "--model", broken, "--port", free_port()) == 2
    err = capsys.readouterr().err
    assert "cannot load ONNX model" in err and "serving" not in err


def test_serving_line_comes_once_the_port_answers(tmp_path):
    model = tmp_path / "m.onnx"
    build_model(model)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}

    def start(port: int) -> tuple[subprocess.Popen, int, list[str]]:
        proc = subprocess.Popen(
            [sys.executable, "-c", TORCH_FREE_MAIN, "--model", str(model), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**env, "COLUMNS": "200"},
        )
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("serving "):
                return proc, port, seen
        end(proc)  # "already in use": another port
        raise AssertionError("".join(seen))

    proc, port, seen = on_a_free_port(start)
    try:
        assert f"http://127.0.0.1:{port}/" in seen[-1]
        health = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=10)
        assert health.status_code == 200  # printed only once it was listening
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
