"""The scoring service: one detector behind the batching queue, and what follows each verdict
(metrics, the dashboard's event stream, NG evidence, the JSONL log). HTTP-free, so the same
object serves the API, the cameras and the tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import UniadError
from ..runtime.backends.registry import url_scheme
from ..runtime.detector import Detection, Detector
from ..runtime.recorder import JsonlLog
from ..runtime.station.swap import (
    PreparedModel,
    changed_record,
    model_id,
    open_checked,
    return_freed_memory,
)
from .batching import BatchScorer
from .config import ServeConfig
from .events import EventHub
from .gallery import Gallery
from .metrics import ServiceMetrics

log = logging.getLogger(__name__)

API_CAMERA = "api"
SWAP_TIMEOUT_S = 300.0


class SwapInProgress(UniadError):
    """A second model swap while one is running (HTTP 409)."""


def detector_opener(config: ServeConfig) -> Callable[[str], Detector]:
    """Opens a model the way `build_service` opened the first one."""
    station = config.station

    def open_model(path: str) -> Detector:
        return Detector(
            path,
            backend=station.backend,
            providers=list(station.providers) if station.providers else None,
            threads=station.threads,
            class_name=config.class_name,
            threshold=config.threshold,
            max_batch=station.max_batch,
        )

    return open_model


class Camera(Protocol):
    """What the service needs from a camera, whoever drives it (the station, today)."""

    name: str

    def info(self) -> dict[str, Any]:
        """Name, source, state, `healthy`, threshold and counters (frames, dropped, ...)."""

    def latest(self) -> tuple[np.ndarray, dict[str, Any] | None, Detection | None] | None:
        """The newest frame with its verdict event and detection (None before the first)."""

    def trigger(self, part_id: str | None) -> dict[str, Any]:
        """The verdict record of the camera's next frame (blocking: call from a worker)."""


class CameraGroup(Protocol):
    """Whatever runs the cameras (the station): started after the server is built, stopped
    before the scoring queue closes."""

    cameras: dict[str, Camera]

    def start(self) -> None: ...

    def swap_model(self, path: str, detector: Detector) -> Future[str]:
        """Check `detector` (opened from `path`) against the cameras, then score with it."""

    def outputs(self) -> dict[str, int]:
        """Counters of the group's own result sinks (e.g. log records not written)."""

    def stop(self) -> None: ...


class ScoringService:
    """Owns the detector, the queue, the metrics, the event hub and the evidence writers."""

    def __init__(self, config: ServeConfig, detector: Detector) -> None:
        self.config = config
        self.detector = detector
        self.camera_group: CameraGroup | None = None
        self.started = time.time()
        self.stopping = threading.Event()
        self.metrics = ServiceMetrics(self.capture_stats, self.station_outputs)
        self.hub = EventHub(history_s=config.history_s)
        self.scorer = BatchScorer(
            detector,
            max_batch=detector.static_batch or config.station.max_batch,
            queue_size=config.queue_size,
            on_batch=self.metrics.observe_batch,
        )
        outputs = config.station
        self.gallery = Gallery(outputs.save_dir, config.gallery_size) if outputs.save_dir else None
        self.journal = JsonlLog(outputs.log) if outputs.log else None
        self._journal_lock = threading.Lock()
        self._warned: set[str] = set()
        self._swapping = threading.Lock()

    @property
    def writes_files(self) -> bool:
        """Whether `record` may touch the disk (NG evidence or the JSONL log)."""
        return self.gallery is not None or self.journal is not None

    @property
    def model_name(self) -> str:
        return self.detector.metadata.name or model_label(self.config.station.model)

    def threshold_for(self, class_name: str | None) -> float | None:
        """The service's threshold, or the model's for `class_name` (unknown names refused)."""
        if class_name is None:
            return self.detector.threshold
        return self.detector.threshold_for(class_name, None)

    def submit(
        self, image: np.ndarray, class_name: str | None = None, *, wait: bool = False
    ) -> Future[Detection]:
        """Queue an image for scoring, judged against the threshold of `class_name` (or the
        service's); `QueueFull` when the queue is full and not `wait`."""
        try:
            return self.scorer.submit(image, self.threshold_for(class_name), wait=wait)
        finally:
            self.metrics.queue_depth.set(self.scorer.depth)

    def record(
        self,
        camera: str,
        image: np.ndarray,
        detection: Detection,
        *,
        started: float,
        class_name: str | None = None,
        part_id: str | None = None,
        frame_index: int | None = None,
        write: bool = True,
        evidence: str | None = None,
    ) -> dict[str, Any]:
        """Everything that follows a verdict; returns its event (also the API's answer).

        `write=False` for the station's verdicts: its own sinks wrote the log and the evidence
        (`evidence` names the overlay it saved, for the gallery).
        """
        now = time.time()
        event: dict[str, Any] = {
            "seq": self.hub.next_seq(),
            "camera": camera,
            "time": now,
            "score": detection.score,
            "normalized_score": detection.normalized_score,
            "verdict": detection.verdict,
            "threshold": detection.threshold,
            "class_name": class_name or self.detector.class_name,
            "model": self.model_name,
            "inference_ms": round(detection.inference_ms, 3),
            "latency_ms": round((now - started) * 1e3, 3),
            "part_id": part_id,
            "frame_index": frame_index,
            "gallery": evidence,
        }
        self.metrics.observe_verdict(camera, detection.verdict, now - started)
        if write and self.gallery is not None and detection.is_anomalous:
            event["gallery"] = self._write(
                camera, "NG evidence", self.gallery.save, event, image, detection
            )
        if event["gallery"] and self.gallery is not None:
            self.gallery.add(event)
        if write and self.journal is not None:
            self._write(camera, "log", self._log, event)
        self.hub.publish(event)
        return event

    def _log(self, event: dict[str, Any]) -> None:
        with self._journal_lock:
            self.journal.write(event)  # type: ignore[union-attr]

    def _write(self, camera: str, what: str, write: Callable[..., Any], *args: Any) -> Any:
        """Run one writer; a failure (full disk, ...) is counted and warned once, never fatal."""
        try:
            return write(*args)
        except (OSError, UniadError) as exc:
            self.metrics.write_errors.labels(camera).inc()
            if what not in self._warned:
                self._warned.add(what)
                log.warning("cannot write %s (scoring goes on): %s", what, exc)
            return None

    @property
    def cameras(self) -> dict[str, Camera]:
        return self.camera_group.cameras if self.camera_group is not None else {}

    def station_outputs(self) -> dict[str, int]:
        return self.camera_group.outputs() if self.camera_group is not None else {}

    def capture_stats(self) -> dict[str, dict[str, int]]:
        return {name: cam.info() for name, cam in self.cameras.items()}

    def health(self) -> dict[str, Any]:
        cameras = {name: cam.info() for name, cam in self.cameras.items()}
        ok = not self.stopping.is_set() and all(c["healthy"] for c in cameras.values())
        return {
            "status": "ok" if ok else "degraded",
            "model_loaded": True,
            "model": self.model_name,
            "backend": self.detector.backend.name,
            "queue_depth": self.scorer.depth,
            "uptime_s": round(time.time() - self.started, 3),
            "cameras": cameras,
        }

    def model_info(self) -> dict[str, Any]:
        """The artifact's metadata and the thresholds in use, each with where it came from."""
        meta = self.detector.metadata
        if self.config.threshold is not None:
            source = "--threshold"
        elif self.detector.class_name is not None:
            source = f"model, class {self.detector.class_name}"
        else:
            source = "model, global" if self.detector.threshold is not None else "none"
        return {
            "path": str(self.config.station.model),
            "model_id": model_id(self.detector),
            "backend": self.detector.backend.name,
            "input_size": list(self.detector.input_size),
            "max_batch": self.scorer.max_batch,
            "threshold_in_use": {
                "value": self.detector.threshold,
                "class_name": self.detector.class_name,
                "source": source,
            },
            "thresholds": {**meta.thresholds.to_dict(), "provenance": meta.thresholds.rule},
            "camera_thresholds": {
                name: {"value": info["threshold"], "class_name": info["class_name"]}
                for name, info in self.capture_stats().items()
            },
            "metadata": meta.to_dict(),
        }

    def swap_model(self, path: str, timeout_s: float = SWAP_TIMEOUT_S) -> dict[str, Any]:
        """Open `path` as the service opened its model, have it checked (by the station with its
        cameras, else here), then score API requests and cameras with it; the old model is
        closed. A one-line `UniadError` leaves the old model scoring."""
        if not self._swapping.acquire(blocking=False):
            raise SwapInProgress("a model swap is already in progress; try again when it is done")
        try:
            config = self.config
            opener = detector_opener(config)
            previous = model_id(self.detector)
            if self.camera_group is not None:
                new = opener(path)
                try:
                    self.camera_group.swap_model(path, new).result(timeout_s)
                except BaseException:
                    new.close()
                    raise
            else:
                new = open_checked(path, opener, self.detector, {}, None).detector
            old = self.scorer.use(new)
            station = replace(config.station, model=path)
            self.detector, self.config = new, replace(config, station=station)
            old.close()
            return_freed_memory()
            if self.camera_group is None and self.journal is not None:
                prepared = PreparedModel(path, new, model_id(new), {})
                with self._journal_lock:
                    self.journal.write(changed_record("serve", previous, prepared))
            return {"model": model_id(new), "previous_model": previous, "path": path}
        finally:
            self._swapping.release()

    def close(self) -> None:
        """Cameras first (captured frames finish), then the queue (in-flight answered), files."""
        self.stopping.set()
        if self.camera_group is not None:
            self.camera_group.stop()
        self.scorer.close()
        self.hub.close()
        if self.journal is not None:
            self.journal.close()
        self.detector.close()


def model_label(model: Path | str) -> str:
    """What the answers call a model without a name: a file's stem, or a Triton URL as given."""
    return str(model) if url_scheme(model) is not None else Path(model).stem
