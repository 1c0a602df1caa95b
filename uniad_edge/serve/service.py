"""The scoring service: one `Station` runs the cameras and the API requests (camera "api") on
one model, in the same batches, through the same sinks (JSONL log, evidence, MQTT) and one
record; the service adds its own sinks to it (metrics, the dashboard's event stream, the NG
gallery). The model lives in the station's slot (opened, swapped and closed there, exactly as
`run` does), so the service holds none. HTTP-free: the same object serves the API, the cameras
and the tests.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import line_thresholds
from ..errors import UniadError
from ..redact import redact_url
from ..runtime.backends.registry import url_scheme
from ..runtime.detector import Detector
from ..runtime.record import ANSWER
from ..runtime.sinks import Sink, Verdict
from ..runtime.station import Station, StationConfig
from ..runtime.station.slot import THRESHOLDS_POLL_S, SwapInProgress
from ..runtime.verdict import resolve_threshold
from .cameras import StationCamera
from .config import ServeConfig
from .events import EventHub
from .gallery import Gallery
from .metrics import ServiceMetrics
from .thresholds import requested

SWAP_TIMEOUT_S = 300.0
__all__ = ["ScoringService", "SwapInProgress", "station_config"]


def station_config(config: ServeConfig) -> StationConfig:
    """The station `serve` runs: its cameras (or none) taking API requests too, with the
    service's log and evidence folder, so one log holds one schema; the API's default class
    and threshold are the station's data, not a second way to open the model."""
    return replace(
        config.station,
        api_queue=config.queue_size,
        api_class_name=config.class_name,
        api_threshold=config.threshold,
    )


class ScoringService:
    """Owns the station (and through its slot, the model), the metrics, the event hub and the
    gallery."""

    def __init__(self, config: ServeConfig, detector: Detector | None = None) -> None:
        """`detector`: a model the caller opened and keeps owning (borrowed by the station's
        slot); by default the station opens `config.station.model` itself."""
        self.config = config
        self.started = time.time()
        self.stopping = threading.Event()
        self.metrics = ServiceMetrics(
            lambda: self.station.counts(), self.capture_stats, self.station_outputs
        )
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
        return self.station.detector.metadata.name or model_label(self.model_path)

    @property
    def model_path(self) -> str:
        """The model scoring now (the slot's path; the configured one for a borrowed model)."""
        return self.station.slot.path or str(self.config.station.model)

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
        answer = record.fields_for(ANSWER)
        answer["inference_ms"] = record.latency_ms.get("inference")
        answer["latency_ms"] = round((time.time() - started) * 1e3, 3)
        return answer

    def station_outputs(self) -> dict[str, int]:
        return self.station.outputs.summary()

    def capture_stats(self) -> dict[str, dict[str, Any]]:
        return {name: cam.info() for name, cam in self.cameras.items()}

    def health(self) -> dict[str, Any]:
        cameras = self.capture_stats()
        ok = not self.stopping.is_set() and all(c["healthy"] for c in cameras.values())
        return {
            "status": "ok" if ok else "degraded",
            "model_loaded": True,
            "model": self.model_name,
            "backend": self.station.detector.backend.name,
            "queue_depth": self.queue_depth,
            "uptime_s": round(time.time() - self.started, 3),
            "cameras": cameras,
        }

    def model_info(self) -> dict[str, Any]:
        """The artifact's metadata and the thresholds in use, each with where it came from."""
        station = self.station
        detector, settings = station.detector, station.config
        value, source = resolve_threshold(
            detector.metadata, detector.thresholds, settings.api_class_name, settings.api_threshold
        )
        meta = detector.metadata
        return {
            "path": redact_url(self.model_path),
            "model_id": station.model_id,
            "backend": detector.backend.name,
            "input_size": list(detector.input_size),
            "max_batch": settings.max_batch,
            "threshold_in_use": {
                "value": value,
                "class_name": settings.api_class_name,
                "source": "--threshold" if source == "given" else source,
            },
            "thresholds": {**detector.thresholds.to_dict(), "provenance": detector.thresholds.rule},
            "thresholds_source": detector.in_force.source,
            "threshold_provenance": self.station.threshold_provenance,
            "camera_thresholds": {
                name: {"value": info["threshold"], "class_name": info["class_name"]}
                for name, info in self.capture_stats().items()
            },
            "metadata": meta.to_dict(),
        }

    def swap_model(self, path: str, timeout_s: float = SWAP_TIMEOUT_S) -> dict[str, Any]:
        """Have the station's slot open `path` (as `run` would), check it and score API
        requests and cameras with it from its next batch on. `SwapInProgress` while another
        swap runs; a one-line `UniadError` leaves the old model scoring."""
        previous = self.station.model_id
        new = self.station.swap_model(path).result(timeout_s)
        return {"model": new, "previous_model": previous, "path": redact_url(path)}

    def set_thresholds(self, body: Any) -> dict[str, Any]:
        """Write the line's thresholds file of the model scoring now as `body` asks
        (`serve/thresholds.py`); the station decides with it from its next batch on.
        `ThresholdsRefused` or a one-line `UniadError` write nothing."""
        detector = self.station.detector
        in_force = detector.in_force
        if in_force.path is None:
            raise UniadError(
                f"{redact_url(self.model_path)} has no thresholds file to write: name one in "
                "the station file (thresholds = ...)"
            )
        before = in_force.thresholds
        after = requested(body, before, detector.metadata.class_names)
        weights = line_thresholds.weights_id(detector.metadata)
        written = line_thresholds.write(in_force.path, after, weights)
        return {
            "thresholds": after.current(),
            "previous": before.current(),
            "file": str(written),
            "in_force": f"from the station's next batch (within {THRESHOLDS_POLL_S:g} s)",
        }

    def close(self) -> None:
        """Cameras first (captured frames and queued requests finish), then sinks, the model."""
        self.stopping.set()
        self.station.close()


def model_label(model: Path | str) -> str:
    """What the answers call a model without a name: a file's stem, or a Triton URL as given."""
    return redact_url(str(model)) if url_scheme(model) is not None else Path(model).stem
