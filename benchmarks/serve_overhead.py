"""Overhead of the service: `POST /v1/score` at batch 1 vs the in-process Detector, same run.

    python benchmarks/serve_overhead.py [--model export/model.onnx] [--requests 200]

The server runs as users run it (`uniad-edge serve` in its own process, on 127.0.0.1); the
client sends one JPEG-encoded 640x480 frame per request, one request at a time, so every
backend batch holds one image. Baselines in this process on the same frame: the Detector on the
decoded frame (what an embedded caller pays) and decode + Detector (the same work the server
does per request). The paths take turns in `--rounds` blocks while the server is up, so that a
load that drifts on a shared machine hits them all alike. `--concurrency 8` adds a row with 8
client threads, where requests batch.
Without --model the test fixture graph is used, widened with convolutions so that inference,
not Python, dominates as it does for a real UniAD model.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
from _fixture import add_model_arguments, describe_model, model_or_fixture, synthetic_frames

from uniad_edge.runtime.detector import Detector

ROOT = Path(__file__).resolve().parents[1]


class Measured:
    """Latencies and busy time of one path, summed over its rounds."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.wall = 0.0

    def add(self, latencies: list[float], wall: float) -> None:
        self.latencies += latencies
        self.wall += wall

    def summary(self) -> dict[str, float]:
        ms = sorted(1e3 * t for t in self.latencies)
        return {
            "requests": len(ms),
            "per_s": len(ms) / self.wall,
            "p50_ms": statistics.median(ms),
            "p99_ms": float(np.percentile(ms, 99)),
        }


def timed(call, count: int) -> tuple[list[float], float]:
    latencies = []
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
    return latencies, time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: Path, port: int, threads: int | None) -> subprocess.Popen:
    argv = ["serve", "--model", str(model), "--port", str(port)]
    argv += ["--threads", str(threads)] if threads else []
    code = "import sys; from uniad_edge.cli import main; sys.argv[0] = 'uniad-edge'; main()"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def over_http(clients: list[httpx.Client], jpeg: bytes, count: int) -> tuple[list[float], float]:
    """`count` requests from len(clients) threads, one client (connection) each."""
    headers = {"content-type": "image/jpeg"}

    def send(i: int) -> float:
        t0 = time.perf_counter()
        response = clients[i % len(clients)].post("/v1/score", content=jpeg, headers=headers)
        response.raise_for_status()
        return time.perf_counter() - t0

    start = time.perf_counter()
    if len(clients) == 1:
        latencies = [send(0) for _ in range(count)]
    else:
        with ThreadPoolExecutor(len(clients)) as pool:
            latencies = list(pool.map(send, range(count)))
    return latencies, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8, help="extra row; 0 to skip")
    parser.add_argument("--rounds", type=int, default=5, help="turns the paths take")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    ok, encoded = cv2.imencode(".jpg", synthetic_frames(4)[3], [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    jpeg = encoded.tobytes()
    frame = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    names = ["detector", "decode+detector", "POST /v1/score, 1 client"]
    if args.concurrency:
        names.append(f"POST /v1/score, {args.concurrency} clients")
    paths = {name: Measured() for name in names}
    per_round = max(1, args.requests // args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        model = model_or_fixture(args.model, Path(tmp), args.size, args.extra_work)
        port = free_port()
        server = start_server(model, port, args.threads)
        url = f"http://127.0.0.1:{port}"
        single = [httpx.Client(base_url=url, timeout=60)]
        many = [httpx.Client(base_url=url, timeout=60) for _ in range(args.concurrency)]
        try:
            with Detector(model, threads=args.threads) as detector:
                calls = {
                    "detector": lambda: timed(lambda: detector(frame), per_round),
                    "decode+detector": lambda: timed(
                        lambda: detector(cv2.imdecode(encoded, cv2.IMREAD_COLOR)), per_round
                    ),
                    names[2]: lambda: over_http(single, jpeg, per_round),
                }
                if args.concurrency:
                    calls[names[3]] = lambda: over_http(many, jpeg, per_round)
                for call in calls.values():  # warm-up: sessions, connections, allocators
                    call()
                for _ in range(args.rounds):
                    for name, call in calls.items():
                        paths[name].add(*call())
        finally:
            for client in single + many:
                client.close()
            server.terminate()
            server.wait(30)
    rows = {name: path.summary() for name, path in paths.items()}
    http = rows[names[2]]
    base = rows["detector"]
    print(f"model: {describe_model(args)}")
    print(
        f"input: one 640x480 JPEG ({len(jpeg)} bytes), {per_round * args.rounds} requests per "
        f"row in {args.rounds} rounds; ONNX Runtime threads: {args.threads or 'default'}"
    )
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"{'path':<28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s vs detector':>18}")
    for name, row in rows.items():
        ratio = row["per_s"] / base["per_s"]
        print(
            f"{name:<28} {row['per_s']:8.1f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} "
            f"{ratio:17.2f}x"
        )
    overhead = http["p50_ms"] - rows["decode+detector"]["p50_ms"]
    print(f"service overhead at batch 1 (p50, vs decode + detector): {overhead:+.2f} ms/request")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "jpeg_bytes": len(jpeg)}, indent=2))


if __name__ == "__main__":
    main()
