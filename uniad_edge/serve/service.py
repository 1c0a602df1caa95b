"""The scoring service: one `Station` runs the cameras and the API requests (camera "api") on
one detector, in the same batches, through the same sinks (JSONL log, evidence, MQTT) and one
record schema; the service adds its own sinks to it (metrics, the dashboard's event stream, the
NG gallery). HTTP-free, so the same object serves the API, the cameras and the tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import UniadError
from ..redact import redact_url
from ..runtime.backends.registry import url_scheme
from ..runtime.detector import Detector
from ..runtime.sinks import Sink, Verdict
from ..runtime.station import Station, StationConfig
from ..runtime.station.swap import model_id, return_freed_memory
from .cameras import StationCamera
from .config import ServeConfig
from .events import EventHub
from .gallery import Gallery
from .metrics import ServiceMetrics

ANSWER_FIELDS = (
    "score",
    "normalized_score",
    "verdict",
    "is_ok",
    "threshold",
    "class_name",
    "model",
    "part_id",
)


SWAP_TIMEOUT_S = 300.0


class SwapInProgress(UniadError):
    """A second model swap while one is running (HTTP 409)."""


def station_config(config: ServeConfig) -> StationConfig:
    """The station `serve` runs: its cameras (or none) taking API requests too, with the
    service's log and evidence folder, so one log holds one schema."""
    return replace(config.station, api_queue=config.queue_size)


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


class ScoringService:
    """Owns the detector and the station, plus the metrics, the event hub and the gallery."""

    def __init__(self, config: ServeConfig, detector: Detector) -> None:
        self.config = config
        self.detector = detector
        self.started = time.time()
        self.stopping = threading.Event()
        self._swapping = threading.Lock()
        self.metrics = ServiceMetrics(self.capture_stats, self.station_outputs)
        self.hub = EventHub(history_s=config.history_s)
        settings = station_config(config)
        self.gallery = (
            Gallery(settings.save_dir, config.gallery_size) if settings.save_dir else None
        )
        sinks: list[Sink] = [self.metrics, self.hub]
        if self.gallery is not None:
            sinks.insert(1, self.gallery)
        self.station = Station(settings, detector, sinks=sinks, on_batch=self._on_batch)
        self.cameras = {
            name: StationCamera(name, self.station, self.hub) for name in self.station.cameras
        }

    def start(self) -> None:
        self.station.start()

    @property
    def model_name(self) -> str:
        return self.detector.metadata.name or model_label(self.config.station.model)

    @property
    def queue_depth(self) -> int:
        requests = self.station.requests
        return requests.depth if requests is not None else 0

    def _on_batch(self, size: int) -> None:
        self.metrics.observe_batch(size, self.queue_depth)

    @staticmethod
    def answer(verdict: Verdict, started: float) -> dict[str, Any]:
        """The API's answer: the verdict fields of the record (its `error` when ERROR), the
        inference time and the latency from the request's arrival."""
        record = verdict.record
        answer = {key: record.get(key) for key in ANSWER_FIELDS}
        answer["inference_ms"] = record["latency_ms"].get("inference")
        answer["latency_ms"] = round((time.time() - started) * 1e3, 3)
        if "error" in record:
            answer["error"] = record["error"]
        return answer

    def station_outputs(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sink in self.station.sinks:
            counts |= sink.summary()
        return counts

    def capture_stats(self) -> dict[str, dict[str, Any]]:
        return {name: cam.info() for name, cam in self.cameras.items()}

    def health(self) -> dict[str, Any]:
        cameras = self.capture_stats()
        ok = not self.stopping.is_set() and all(c["healthy"] for c in cameras.values())
        return {
            "status": "ok" if ok else "degraded",
            "model_loaded": True,
            "model": self.model_name,
            "backend": self.detector.backend.name,
            "queue_depth": self.queue_depth,
            "uptime_s": round(time.time() - self.started, 3),
            "cameras": cameras,
        }

    def model_info(self) -> dict[str, Any]:
        """The artifact's metadata and the thresholds in use, each with where it came from."""
        meta = self.detector.metadata
        _, source = self.detector.resolve_threshold(
            self.detector.class_name, self.detector.threshold_override
        )
        return {
            "path": redact_url(str(self.config.station.model)),
            "model_id": model_id(self.detector),
            "backend": self.detector.backend.name,
            "input_size": list(self.detector.input_size),
            "max_batch": self.station.config.max_batch,
            "threshold_in_use": {
                "value": self.detector.threshold,
                "class_name": self.detector.class_name,
                "source": "--threshold" if source == "given" else source,
            },
            "thresholds": {**meta.thresholds.to_dict(), "provenance": meta.thresholds.rule},
            "threshold_provenance": self.station.threshold_provenance,
            "camera_thresholds": {
                name: {"value": info["threshold"], "class_name": info["class_name"]}
                for name, info in self.capture_stats().items()
            },
            "metadata": meta.to_dict(),
        }

    def swap_model(self, path: str, timeout_s: float = SWAP_TIMEOUT_S) -> dict[str, Any]:
        """Open `path` as the service opened its model and have the station check it and score
        API requests and cameras with it from its next batch on; the old model is closed then.
        A one-line `UniadError` leaves the old model scoring."""
        if not self._swapping.acquire(blocking=False):
            raise SwapInProgress("a model swap is already in progress; try again when it is done")
        try:
            previous = model_id(self.detector)
            new = detector_opener(self.config)(path)
            try:
                self.station.swap_model(path, new).result(timeout_s)
            except BaseException:
                new.close()
                raise
            old, self.detector = self.detector, new
            self.config = replace(self.config, station=replace(self.config.station, model=path))
            old.close()
            return_freed_memory()
            return {"model": model_id(new), "previous_model": previous, "path": redact_url(path)}
        finally:
            self._swapping.release()

    def close(self) -> None:
        """Cameras first (captured frames and queued requests finish), then sinks, the model."""
        self.stopping.set()
        self.station.close()
        self.detector.close()


def model_label(model: Path | str) -> str:
    """What the answers call a model without a name: a file's stem, or a Triton URL as given."""
    return redact_url(str(model)) if url_scheme(model) is not None else Path(model).stem
