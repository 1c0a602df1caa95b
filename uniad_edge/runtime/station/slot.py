"""The model slot: the one holder of the model a station scores with, and the one way to open,
swap and close it (`run`, `serve`, the demo and the soak benchmark all go through it).

Ownership follows Polygraphy's rule: a model the slot opened itself (from a path, with its
loader) is owned and closed by the slot; a `Detector` passed in is borrowed, and its caller
closes it. The loader is built from the `StationConfig` alone (`station_loader`), so a model
opened for `serve` or swapped in later gets the same backend, threads, batch size and camera
bit depth as the first one.

A swap (`request`) opens and checks the new model on a background thread (metadata readable,
the running model's input size, every camera's class known, a warm-up run with a finite
score and map on a reference frame), then the scoring thread installs it between two batches
(`take`, `install`): no frame is dropped or scored twice, and each record names the model that
scored it. One swap at a time: a second gets `SwapInProgress` at once. A model that fails a
check is closed again and the old one keeps scoring.

The line's thresholds live beside the model (`line_thresholds`), not in it: `refresh_thresholds`
(the scoring thread, between batches) picks up a replaced thresholds file without reopening the
model, and the model id then names the new thresholds (`name@hash+t<digest>`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ... import line_thresholds
from ...errors import UniadError
from ..backends.base import Closeable
from ..detector import Detector, threshold_for
from .config import CameraConfig, StationConfig

log = logging.getLogger(__name__)
Loader = Callable[[str], Detector]
THRESHOLDS_POLL_S = 1.0  # how often the scoring thread looks at the thresholds file


class SwapInProgress(UniadError):
    """A second model swap while one is running (serve answers HTTP 409)."""


def model_id(detector: Detector) -> str:
    """Which weights and which thresholds made a verdict, for the MES: name plus checkpoint
    hash prefix, plus `+t<digest>` when the line's thresholds file is in force."""
    return line_thresholds.weights_id(detector.metadata) + detector.in_force.tag


def file_signature(path: str | Path) -> tuple[int, int, int] | None:
    """What changes when a file is replaced or rewritten (None while it is missing)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def station_loader(config: StationConfig) -> Loader:
    """Opens a model from a path the way every model of this station is opened."""

    def open_model(path: str) -> Detector:
        return Detector(
            path,
            backend=config.backend,
            providers=list(config.providers) if config.providers else None,
            threads=config.threads,
            bit_depth=config.bit_depth,
            max_batch=config.max_batch,
            thresholds_file=config.thresholds,
        )

    return open_model


@dataclass
class PreparedModel:
    """A checked model waiting for the scoring thread to install it."""

    path: str
    detector: Detector
    model_id: str
    thresholds: dict[str, float | None]
    owned: bool = True  # opened by the slot (closed by it), or borrowed from the caller
    future: Future[str] = field(default_factory=Future)


def open_checked(
    path: str | Path,
    open_model: Loader,
    running: Detector,
    cameras: Mapping[str, CameraConfig],
    reference: np.ndarray | None,
    owned: bool = True,
) -> PreparedModel:
    """Open `path` with `open_model` and check it can take over from `running`; a one-line
    `UniadError` (and the new model closed again, if `owned`) when it cannot."""
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
            name: threshold_for(detector, camera.class_name, camera.threshold)
            for name, camera in cameras.items()
        }
        h, w = detector.input_size
        image = reference if reference is not None else np.full((h, w, 3), 128, np.uint8)
        (detection,) = detector.score([image])
        if detection.error is not None or not math.isfinite(detection.score):
            raise UniadError(
                f"no finite result on a reference frame ({detection.error or detection.score})"
            )
    except BaseException as exc:
        if owned:
            detector.close()
        if isinstance(exc, UniadError):
            raise UniadError(f"{path}: {exc}") from None
        raise
    return PreparedModel(str(path), detector, model_id(detector), thresholds, owned)


def return_freed_memory() -> None:
    """Hand a closed model's memory back to the OS. Each swap opens its model on a new thread,
    so glibc keeps the freed session in per-thread arenas unless asked to trim; without this,
    RSS climbs over many swaps although nothing is leaked."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


class ModelSlot(Closeable):
    """The model scoring now (`detector`, `model_id`, `path`), its swaps and its closing."""

    def __init__(self, loader: Loader, model: Detector | str | Path | None) -> None:
        """`model`: a path, opened with `loader` and owned; or a `Detector`, borrowed. Later
        swaps by path use `loader` too."""
        self.loader = loader
        if isinstance(model, Detector):
            self.detector, self.owned, self.path = model, False, None
        elif model is None:
            raise UniadError("no model given: pass --model (or set model in the station file)")
        else:
            self.detector, self.owned, self.path = loader(str(model)), True, str(model)
        self.model_id = model_id(self.detector)
        self._lock = threading.Lock()
        self._busy = False
        self._ready: PreparedModel | None = None
        self._closed = False
        self._thresholds_seen = self._thresholds_signature()
        self._next_look = 0.0

    @classmethod
    def for_station(cls, config: StationConfig, detector: Detector | None = None) -> ModelSlot:
        """The slot of a station: the caller's `detector` (borrowed) or `config.model`."""
        slot = cls(station_loader(config), detector if detector is not None else config.model)
        if detector is not None and config.model is not None:
            slot.path = str(config.model)
        return slot

    def request(
        self,
        path: str | Path,
        prepare: Callable[[str, Loader, bool], PreparedModel],
        on_ready: Callable[[], None],
        detector: Detector | None = None,
    ) -> Future[str]:
        """Start checking `path` on a background thread (opened with the slot's loader, or the
        caller's `detector`, borrowed); `on_ready` once it waits for `take`. The future gets
        the new model id once it scores, or the one-line reason it was refused."""
        future: Future[str] = Future()
        with self._lock:
            if self._busy:
                future.set_exception(
                    SwapInProgress("a model swap is already in progress; try again when it is done")
                )
                return future
            self._busy = True
        opener = self.loader if detector is None else (lambda _path: detector)

        def work() -> None:
            try:
                prepared = prepare(str(path), opener, detector is None)
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
        """The checked model, once (the caller then `install`s it)."""
        with self._lock:
            prepared, self._ready = self._ready, None
        return prepared

    def install(self, prepared: PreparedModel) -> str:
        """Make `prepared` the model scoring now; the old one is closed if the slot owned it.
        Returns the previous model id."""
        old, owned, previous = self.detector, self.owned, self.model_id
        self.detector, self.model_id = prepared.detector, prepared.model_id
        self.owned, self.path = prepared.owned, prepared.path
        self._thresholds_seen = self._thresholds_signature()
        if owned:
            old.close()
            return_freed_memory()
        self._done()
        log.info("model swapped: %s -> %s (%s)", previous, prepared.model_id, prepared.path)
        prepared.future.set_result(prepared.model_id)
        return previous

    def refresh_thresholds(self) -> bool:
        """Re-read the line's thresholds file if it changed (looked at once a second at most);
        True when the thresholds in force (and so the model id) changed. An unreadable file is
        one warning, and the thresholds in force stay."""
        now = time.monotonic()
        if now < self._next_look:
            return False
        self._next_look = now + THRESHOLDS_POLL_S
        seen = self._thresholds_signature()
        if seen == self._thresholds_seen:
            return False
        self._thresholds_seen = seen
        old = self.detector.in_force
        try:
            new = line_thresholds.in_force(self.detector.metadata, old.path)
        except UniadError as exc:
            log.warning("%s; the thresholds in force stay", exc)
            return False
        if (new.from_file, new.thresholds.current()) == (old.from_file, old.thresholds.current()):
            return False
        self.detector.use_thresholds(new)
        previous, self.model_id = self.model_id, model_id(self.detector)
        log.info("thresholds changed: %s -> %s (%s)", previous, self.model_id, new.source)
        return True

    def _thresholds_signature(self) -> tuple[int, int, int] | None:
        path = self.detector.in_force.path
        return None if path is None else file_signature(path)

    def cancel(self, reason: str) -> None:
        """The station ended: a model still waiting is closed (if owned), its caller told why."""
        prepared = self.take()
        if prepared is not None:
            self._done()
            if prepared.owned:
                prepared.detector.close()
            prepared.future.set_exception(UniadError(reason))

    def close(self) -> None:
        """Close the model if the slot owns it (once)."""
        if self._closed:
            return
        self._closed = True
        if self.owned:
            self.detector.close()

    def _done(self) -> None:
        with self._lock:
            self._busy = False
