"""Model update without stopping the line.

`Station.swap_model(path)` opens and checks the new model on a background thread (metadata
readable, the running model's input size, every camera's class known, a warm-up run with a
finite score and map on a reference frame), then the scoring thread swaps it in between two
batches: no frame is dropped or scored twice, and each record names the model that scored it.
A model that fails a check is closed again and the old one keeps scoring; the caller gets the
reason in one line. After the swap the old model is closed (its memory released) and the log
gets one `model_changed` record.

`watch_model` reloads when the model file is replaced (e.g. atomically by `calibrate`);
`reload_on_sighup` reloads on SIGHUP (`uniad-edge run`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import UniadError
from ...redact import redact_url
from ..backends.base import Closeable
from ..detector import Detector
from .config import CameraConfig, StationConfig

log = logging.getLogger(__name__)
WATCH_INTERVAL_S = 1.0


def model_id(detector: Detector) -> str:
    """Name plus checkpoint hash prefix: which model made a verdict, for the MES."""
    meta = detector.metadata
    return f"{meta.name}@{meta.checkpoint_sha256[:12]}" if meta.checkpoint_sha256 else meta.name


@dataclass
class PreparedModel:
    """A checked model waiting for the scoring thread to swap it in."""

    path: str
    detector: Detector
    model_id: str
    thresholds: dict[str, float | None]
    owned: bool = True  # opened here (closed by the station), or given by the caller
    future: Future[str] = field(default_factory=Future)


def station_opener(config: StationConfig) -> Callable[[str], Detector]:
    """Opens a model the way the station opened its first one."""

    def open_model(path: str) -> Detector:
        return Detector(
            path,
            backend=config.backend,
            providers=config.providers,
            threads=config.threads,
            bit_depth=config.bit_depth,
            max_batch=config.max_batch,
        )

    return open_model


def open_checked(
    path: str | Path,
    open_model: Callable[[str], Detector],
    running: Detector,
    cameras: Mapping[str, CameraConfig],
    reference: np.ndarray | None,
) -> PreparedModel:
    """Open `path` with `open_model` and check it can take over from `running`; a one-line
    `UniadError` (and the new model closed again) when it cannot."""
    try:
        detector = open_model(str(path))
    except UniadError as exc:
        raise UniadError(f"cannot open {path}: {exc}") from None
    try:
        if detector.input_size != running.input_size:
            (h, w), (h0, w0) = detector.input_size, running.input_size
            raise UniadError(
                f"takes {w}x{h} inputs but the running model {w0}x{h0}; export it at the same "
                "size (the cameras' ROIs and thresholds were set for that)"
            )
        thresholds = {
            name: detector.threshold_for(camera.class_name, camera.threshold)
            for name, camera in cameras.items()
        }
        h, w = detector.input_size
        image = reference if reference is not None else np.full((h, w, 3), 128, np.uint8)
        (detection,) = detector.predict([image], [None])
        if detection.error is not None or not math.isfinite(detection.score):
            raise UniadError(
                f"no finite result on a reference frame ({detection.error or detection.score})"
            )
    except UniadError as exc:
        detector.close()
        raise UniadError(f"{path}: {exc}") from None
    except BaseException:
        detector.close()
        raise
    return PreparedModel(str(path), detector, model_id(detector), thresholds)


def return_freed_memory() -> None:
    """Hand the closed model's memory back to the OS. Each swap opens its model on a new
    thread, so glibc keeps the freed session in per-thread arenas unless asked to trim; without
    this, RSS climbs over many swaps although nothing is leaked."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


def changed_record(station: str, previous: str, prepared: PreparedModel) -> dict[str, Any]:
    """The log's `model_changed` record."""
    now = time.time()
    return {
        "event": "model_changed",
        "station": station,
        "timestamp": now,
        "time": datetime.fromtimestamp(now, timezone.utc).isoformat(),
        "model": prepared.model_id,
        "previous_model": previous,
        "path": redact_url(prepared.path),
    }


class ModelSwap:
    """One swap at a time: `request` checks on a background thread and parks the result for
    `take` (the scoring thread, between batches)."""

    def __init__(self, prepare: Callable[[str, Detector | None], PreparedModel]) -> None:
        self._prepare = prepare
        self._lock = threading.Lock()
        self._busy = False
        self._ready: PreparedModel | None = None

    def request(
        self, path: str | Path, on_ready: Callable[[], None], detector: Detector | None = None
    ) -> Future[str]:
        """Start checking `path` (opened by `prepare`, or the caller's `detector`); the future
        gets the new model id once it scores, or the one-line reason it was refused."""
        future: Future[str] = Future()
        with self._lock:
            if self._busy:
                future.set_exception(
                    UniadError("a model swap is already in progress; try again when it is done")
                )
                return future
            self._busy = True

        def work() -> None:
            try:
                prepared = self._prepare(str(path), detector)
            except BaseException as exc:
                self._done()
                reason = str(exc) if isinstance(exc, UniadError) else f"{type(exc).__name__}: {exc}"
                log.warning("model not swapped, the running one keeps scoring: %s", reason)
                future.set_exception(UniadError(reason))
                return
            prepared.future = future
            with self._lock:
                self._ready = prepared
            on_ready()

        threading.Thread(target=work, name="uniad-model-swap", daemon=True).start()
        return future

    def take(self) -> PreparedModel | None:
        """The checked model, once (the caller swaps it in and calls `finished`)."""
        with self._lock:
            prepared, self._ready = self._ready, None
        return prepared

    def finished(
        self, prepared: PreparedModel, error: BaseException | None = None, previous: str = ""
    ) -> None:
        self._done()
        if error is None:
            log.info("model swapped: %s -> %s (%s)", previous, prepared.model_id, prepared.path)
            prepared.future.set_result(prepared.model_id)
        else:
            prepared.detector.close()
            prepared.future.set_exception(error)

    def cancel(self, reason: str) -> None:
        """The station ended: a model still waiting is closed, its caller told why."""
        prepared = self.take()
        if prepared is not None:
            self.finished(prepared, UniadError(reason))

    def _done(self) -> None:
        with self._lock:
            self._busy = False


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is replaced or rewritten (None while it is missing)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class ModelWatcher(Closeable):
    """Calls `reload(path)` when `path` is replaced (a new inode, size or mtime), polled every
    `interval_s`: works on every filesystem, and `calibrate`'s atomic replace is one change."""

    def __init__(
        self, path: str | Path, reload: Callable[[str], Any], interval_s: float = WATCH_INTERVAL_S
    ) -> None:
        self.path = Path(path)
        self.reload = reload
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._seen = file_signature(self.path)
        self._thread = threading.Thread(target=self._run, name="uniad-model-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = file_signature(self.path)
            if now is not None and now != self._seen:
                self._seen = now
                log.info("%s changed; loading it", self.path)
                self.reload(str(self.path))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextmanager
def reload_on_sighup(reload: Callable[[], Any]) -> Iterator[None]:
    """SIGHUP reloads the model (the same path) while the block runs; main thread only."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
        yield
        return
    previous = signal.signal(signal.SIGHUP, lambda _signum, _frame: reload())
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)
