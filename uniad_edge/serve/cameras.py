"""The single-source loop per camera: capture the newest frame, score it through the service's
queue (so cameras and HTTP requests share backend batches), keep the latest for the dashboard.

This is the camera side used until the station module embeds its own; it satisfies the
`Camera` protocol of `service.py`, as the station adapter does.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import cv2
import numpy as np

from ..errors import UniadError
from ..runtime.capture import FrameStream, open_source
from ..runtime.detector import Detection
from .service import ScoringService

log = logging.getLogger(__name__)


class SourceCamera:
    """One `--source NAME=URI`, scored continuously; `trigger` re-scores the newest frame."""

    def __init__(self, name: str, uri: str, service: ScoringService) -> None:
        self.name = name
        self.uri = uri
        self.service = service
        self.state = "starting"
        self.scored = 0
        self.stream: FrameStream = open_source(uri)
        self._latest: tuple[np.ndarray, dict[str, Any] | None, Detection | None] | None = None
        self._latest_index: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"uniad-cam-{name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        self.state = "running"
        try:
            while not self._stop.is_set():
                frame = self.stream.get(timeout=0.1)
                if frame is None:
                    if self.stream.finished:
                        self.state = "ended"
                        return
                    continue
                with self._lock:
                    self._latest = (frame.image, None, None)
                    self._latest_index = frame.index
                detection = self.service.submit(frame.image, wait=True).result()
                event = self.service.record(
                    self.name,
                    frame.image,
                    detection,
                    started=frame.timestamp,
                    frame_index=frame.index,
                )
                self.scored += 1
                with self._lock:
                    if self._latest_index == frame.index:
                        self._latest = (frame.image, event, detection)
        except UniadError as exc:  # the service is shutting down, or the model refused a frame
            if not self._stop.is_set():
                log.error("camera %s stopped: %s", self.name, exc)
                self.state = "failed"
        except Exception:
            log.exception("camera %s failed", self.name)
            self.state = "failed"
        finally:
            if self.state == "running":
                self.state = "stopped"

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.stream.description,
            "state": self.state,
            "live": self.stream.live,
            "captured": self.stream.captured,
            "scored": self.scored,
            "dropped": self.stream.dropped,
            "reconnects": self.stream.reconnects,
        }

    def latest(self) -> tuple[np.ndarray, dict[str, Any] | None, Detection | None] | None:
        with self._lock:
            return self._latest

    def trigger(self, part_id: str | None) -> dict[str, Any]:
        latest = self.latest()
        if latest is None:
            raise UniadError(f"camera {self.name} has no frame yet")
        image, previous, _ = latest
        started = time.time()
        detection = self.service.submit(image, wait=True).result()
        index = None if previous is None else previous.get("frame_index")
        event = self.service.record(
            self.name, image, detection, started=started, part_id=part_id, frame_index=index
        )
        with self._lock:
            if self._latest is not None and self._latest[0] is image:
                self._latest = (image, event, detection)
        return event

    def stop(self) -> None:
        self._stop.set()
        self.stream.stop()
        self._thread.join(timeout=10)
        self.stream.join(timeout=5)
        if self.state in ("running", "starting"):
            self.state = "stopped"


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise UniadError(f"OpenCV could not encode a {image.shape} image as JPEG")
    return data.tobytes()
