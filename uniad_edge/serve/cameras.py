"""The station's cameras as the service sees them: state, newest frame and verdict, triggers.

The station (`uniad_edge.runtime.station`) captures, batches and scores, and its sinks write
the log, the evidence and the MQTT messages and feed the service's metrics, event stream and
gallery; this adapter reads what the dashboard shows from the station and the event hub.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..errors import UniadError
from ..runtime.station import Station
from .events import EventHub, Latest

TRIGGER_TIMEOUT_S = 30.0
RECORDED_TIMEOUT_S = 5.0
HEALTHY = ("connected", "ended")


class StationCamera:
    """One camera of the station: its state, newest verdict and triggers."""

    def __init__(self, name: str, station: Station, hub: EventHub) -> None:
        self.name = name
        self.station = station
        self.hub = hub

    def info(self) -> dict[str, Any]:
        state = self.station.state(self.name)
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
            "class_name": state.class_name,
            "threshold": state.threshold,
        }

    def latest(self) -> Latest | tuple[np.ndarray, None, None] | None:
        """The newest scored image with its event and detection; before the first verdict,
        the newest captured frame alone."""
        scored = self.hub.latest(self.name)
        if scored is not None:
            return scored
        frame, _ = self.station.latest(self.name)
        return None if frame is None or frame.image is None else (frame.image, None, None)

    def trigger(self, part_id: str | None) -> dict[str, Any]:
        """The station's record of the camera's next frame (tagged with `part_id`), returned
        once the event hub has it too, so `latest` and the dashboard already show it."""
        record = self.station.trigger(self.name, part_id, timeout=TRIGGER_TIMEOUT_S)
        self.hub.wait_for(self.name, record.index, RECORDED_TIMEOUT_S)
        return record.to_dict()


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise UniadError(f"OpenCV could not encode a {image.shape} image as JPEG")
    return data.tobytes()
