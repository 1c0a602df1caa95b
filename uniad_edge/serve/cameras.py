"""The station's cameras as the service sees them: state, newest frame and verdict, triggers.

The station (`uniad_edge.runtime.station`) captures, batches and scores, and writes the camera
verdicts' log, evidence and MQTT messages with its own sinks; this adapter subscribes to its
verdicts to feed the service (metrics, event stream, gallery) and keeps what the dashboard shows.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import cv2
import numpy as np

from ..errors import UniadError
from ..runtime.detector import Detection, Detector
from ..runtime.sinks import Verdict
from ..runtime.station import Station
from .service import ScoringService

TRIGGER_TIMEOUT_S = 30.0
RECORDED_TIMEOUT_S = 5.0
HEALTHY = ("connected", "ended")


class StationCamera:
    """One camera of the station, behind the service's `Camera` protocol."""

    def __init__(self, name: str, station: Station) -> None:
        self.name = name
        self.station = station
        self.latest_scored: tuple[np.ndarray, dict[str, Any], Detection] | None = None
        self._recorded = threading.Condition()

    def recorded(self, image: np.ndarray, event: dict[str, Any], detection: Detection) -> None:
        """The service has recorded this camera's newest verdict."""
        with self._recorded:
            self.latest_scored = (image, event, detection)
            self._recorded.notify_all()

    def info(self) -> dict[str, Any]:
        state = self.station.state(self.name)
        camera = self.station.cameras[self.name]
        return {
            "name": self.name,
            "source": state.source,
            "state": state.status,
            "healthy": state.status in HEALTHY,
            "frames": state.frames,
            "ok": state.ok,
            "ng": state.ng,
            "errors": state.errors,
            "fps": round(state.fps, 2),
            "dropped": state.dropped,
            "reconnects": state.reconnects,
            "class_name": camera.config.class_name,
            "threshold": camera.threshold,
        }

    def latest(self) -> tuple[np.ndarray, dict[str, Any] | None, Detection | None] | None:
        if self.latest_scored is not None:
            return self.latest_scored
        frame, _ = self.station.latest(self.name)
        return None if frame is None or frame.image is None else (frame.image, None, None)

    def trigger(self, part_id: str | None) -> dict[str, Any]:
        """The station's record of the camera's next frame (tagged with `part_id`), returned
        once the service has recorded it too, so `latest` and the dashboard already show it."""
        record = self.station.trigger(self.name, part_id, timeout=TRIGGER_TIMEOUT_S)
        with self._recorded:
            self._recorded.wait_for(
                lambda: (
                    self.latest_scored is not None
                    and self.latest_scored[1]["frame_index"] >= record["index"]
                ),
                timeout=RECORDED_TIMEOUT_S,
            )
        return record


class StationCameras:
    """Starts the station, routes its verdicts into the service, stops it on close."""

    def __init__(self, station: Station, service: ScoringService) -> None:
        self.station = station
        self.service = service
        self.cameras = {name: StationCamera(name, station) for name in station.cameras}
        self._unsubscribe = station.subscribe(self._on_verdict)

    def start(self) -> None:
        self.station.start()

    def swap_model(self, path: str, detector: Detector) -> Future[str]:
        """The station checks `detector` and scores with it from its next batch on."""
        return self.station.swap_model(path, detector)

    def _on_verdict(self, verdict: Verdict) -> None:
        """On the station's output thread, after its evidence and log sinks have run."""
        if verdict.detection is None or verdict.image is None:
            return  # an unreadable frame: the station's log has its error record
        record, frame = verdict.record, verdict.frame
        event = self.service.record(
            verdict.camera,
            verdict.image,
            verdict.detection,
            started=frame.timestamp,
            part_id=record.get("part_id"),
            frame_index=frame.index,
            write=False,
            evidence=self._evidence_name(verdict),
        )
        self.cameras[verdict.camera].recorded(verdict.image, event, verdict.detection)

    def _evidence_name(self, verdict: Verdict) -> str | None:
        """The overlay the station's evidence sink wrote for this NG verdict (named in its
        record), if it wrote one into the gallery's folder."""
        gallery = self.service.gallery
        if gallery is None or not verdict.detection.is_anomalous:
            return None
        overlay = verdict.record.get("evidence", {}).get("overlay")
        return overlay if overlay is not None and gallery.has(overlay) else None

    def outputs(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sink in self.station.sinks:
            counts |= sink.summary()
        return counts

    def stop(self) -> None:
        """Finish what is captured, then end; the station closes its own sinks."""
        self.station.close()
        self._unsubscribe()


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise UniadError(f"OpenCV could not encode a {image.shape} image as JPEG")
    return data.tobytes()
