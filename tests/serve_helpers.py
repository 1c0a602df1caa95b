"""Start the real service (uvicorn on a free 127.0.0.1 port) on fixture models, for serve tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from ports import free_port, held_socket

from uniad_edge.runtime.backends.base import Backend
from uniad_edge.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from uniad_edge.runtime.detector import Detector
from uniad_edge.runtime.station import CameraConfig, StationConfig
from uniad_edge.serve.config import ServeConfig
from uniad_edge.serve.server import BackgroundServer, build_service

ROOT = Path(__file__).resolve().parents[1]
PORT_TRIES = 3


class ServeProcess:
    """`uniad-edge serve` in a child process, its output in files (a pipe nobody reads would
    fill and stall it); `url` once /v1/health answers."""

    def __init__(self, proc: subprocess.Popen, url: str, out: Path, err: Path) -> None:
        self.proc, self.url, self.out, self.err = proc, url, out, err

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


@contextmanager
def serve_process(
    folder: Path, *args: Any, start_s: float = 60, open_files: int | None = None
) -> Iterator[ServeProcess]:
    """Run `serve ARGS --port P` in `folder` (its working directory), with at most
    `open_files` descriptors when given, until it says it serves on P (another free port when
    a server elsewhere took P first); SIGTERM and wait at the end, kill if it does not stop,
    so no child outlives the test."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    env["COLUMNS"] = "500"  # the "serving ... on URL" line on one line
    out, err = folder / "serve.out", folder / "serve.err"
    for attempt in range(PORT_TRIES):
        port = free_port()
        command = [sys.executable, "-m", "uniad_edge", "serve", *map(str, args)]
        with out.open("w") as stdout, err.open("w") as stderr:
            proc = subprocess.Popen(
                [*command, "--port", str(port)],
                stdout=stdout,
                stderr=stderr,
                cwd=folder,
                env=env,
                preexec_fn=None if open_files is None else lambda: _limit_files(open_files),
            )
        try:
            if _listening(proc, err, port, start_s, retry=attempt + 1 < PORT_TRIES):
                yield ServeProcess(proc, f"http://127.0.0.1:{port}", out, err)
                return
        finally:
            _stop(proc)


def _listening(proc: subprocess.Popen, err: Path, port: int, start_s: float, retry: bool) -> bool:
    """True once `proc` says it serves on `port`; False when the port was taken (retry)."""
    deadline = time.monotonic() + start_s
    while True:
        text = err.read_text(errors="replace")
        if "serving " in text and f"127.0.0.1:{port}/" in text:
            return True
        if proc.poll() is not None:
            if retry and "could not listen" in text:
                return False
            raise AssertionError(f"serve exited: {text}")
        assert time.monotonic() < deadline, f"serve did not come up: {text}"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _limit_files(count: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))


def png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


@contextmanager
def running(
    model: Path,
    cameras: dict[str, str] | None = None,
    station: dict[str, Any] | StationConfig | None = None,
    **options: Any,
) -> Iterator[BackgroundServer]:
    """The service for `model` with `options` (ServeConfig fields) and a station: of `cameras`
    (name -> source; `station`: more StationConfig fields), or `station` itself."""
    if isinstance(station, StationConfig):
        options["station"] = station
    elif cameras:
        options["station"] = StationConfig(
            cameras=[CameraConfig(name, uri) for name, uri in cameras.items()],
            model=model,
            log=options.pop("log", None),
            save_dir=options.pop("save_dir", None),
            **(station or {}),
        )
    sock = None if "port" in options else held_socket()
    if sock is not None:
        options["port"] = sock.getsockname()[1]
    config = ServeConfig.from_options(model=model, host="127.0.0.1", **options)
    with BackgroundServer(build_service(config), sock=sock) as server:
        yield server


class GatedBackend(Backend):
    """A real ONNX Runtime backend that waits for `gate` before each inference, so a test can
    hold the worker busy and fill the queue deterministically; the results are the real ones."""

    def __init__(self, model: Path) -> None:
        self.inner = OnnxRuntimeBackend(model)
        super().__init__(self.inner.metadata)
        self.name = "onnxruntime"
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []

    @property
    def input_shape(self) -> tuple[int | None, int, int, int]:
        return self.inner.input_shape

    def infer(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.entered.set()
        assert self.gate.wait(30), "test never opened the gate"
        self.batches.append(len(images))
        return self.inner.infer(images)

    def close(self) -> None:
        self.gate.set()
        self.inner.close()


@contextmanager
def running_gated(model: Path, **options: Any) -> Iterator[tuple[BackgroundServer, GatedBackend]]:
    """Like `running`, on a `GatedBackend` (the gate starts closed)."""
    sock = held_socket()
    port = sock.getsockname()[1]
    config = ServeConfig.from_options(model=model, host="127.0.0.1", port=port, **options)
    backend = GatedBackend(model)
    service = build_service(config, Detector(backend, max_batch=config.station.max_batch))
    with BackgroundServer(service, sock=sock) as server:
        yield server, backend
