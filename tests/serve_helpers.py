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
import httpx
import numpy as np
from ports import free_port

from uniad_edge.runtime.backends.base import Backend
from uniad_edge.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from uniad_edge.runtime.detector import Detector
from uniad_edge.runtime.station import CameraConfig, StationConfig
from uniad_edge.serve.config import ServeConfig
from uniad_edge.serve.server import BackgroundServer, build_service

ROOT = Path(__file__).resolve().parents[1]


class ServeProcess:
    """`uniad-edge serve` in a child process, its output in files (a pipe nobody reads would
    fill and stall it); `url` once /v1/health answers."""

    def __init__(self, proc: subprocess.Popen, url: str, out: Path, err: Path) -> None:
        self.proc, self.url, self.out, self.err = proc, url, out, err

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


@contextmanager
def serve_process(folder: Path, *args: Any, start_s: float = 60) -> Iterator[ServeProcess]:
    """Run `serve ARGS --port P` in `folder` (its working directory); SIGTERM and wait at the
    end, kill if it does not stop, so no child outlives the test."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    out, err = folder / "serve.out", folder / "serve.err"
    command = [sys.executable, "-m", "uniad_edge", "serve", *map(str, args), "--port", str(port)]
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=folder, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_s
        while True:
            assert proc.poll() is None, err.read_text()
            try:
                if httpx.get(f"{url}/v1/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"serve did not come up: {err.read_text()}"
            time.sleep(0.1)
        yield ServeProcess(proc, url, out, err)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    options.setdefault("port", free_port())
    config = ServeConfig.from_options(model=model, host="127.0.0.1", **options)
    with BackgroundServer(build_service(config)) as server:
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
    config = ServeConfig.from_options(model=model, host="127.0.0.1", port=free_port(), **options)
    backend = GatedBackend(model)
    service = build_service(config, Detector(backend, max_batch=config.station.max_batch))
    with BackgroundServer(service) as server:
        yield server, backend
