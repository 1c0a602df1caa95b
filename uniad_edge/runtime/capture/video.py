"""cv2.VideoCapture sources: a local camera index, a video file, a network URL and a
GStreamer pipeline. A camera index gives up after `DEVICE_PATIENCE_S` under the default
reconnect policy (a missing device is usually a typo); URLs and pipelines wait for ever (a
network camera may boot after the station)."""

from __future__ import annotations

import re

import cv2
import numpy as np

from ...errors import UniadError
from ...redact import redact_url
from .base import Reader

URL_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
URL_TIMEOUT_MS = 5000
DEVICE_PATIENCE_S = 10.0


class VideoReader(Reader):
    """cv2.VideoCapture over a camera index, video file, URL or GStreamer pipeline."""

    def __init__(
        self,
        target: int | str,
        api: int,
        live: bool,
        description: str,
        patience_s: float | None = None,
    ) -> None:
        self.target = target
        self.api = api
        self.live = live
        self.description = description
        self.patience_s = patience_s
        self.claimed = 0  # frames the container says it holds (files only; 0: unknown)
        self.decoded = 0
        self._cap: cv2.VideoCapture | None = None
        self._pending: np.ndarray | None = None

    def open(self) -> None:
        if self.api == cv2.CAP_FFMPEG:  # a hung network camera is noticed in seconds
            timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, URL_TIMEOUT_MS]
            cap = cv2.VideoCapture(
                self.target, self.api, [*timeouts, cv2.CAP_PROP_READ_TIMEOUT_MSEC, URL_TIMEOUT_MS]
            )
        else:
            cap = cv2.VideoCapture(self.target, self.api)
        ok, image = cap.read() if cap.isOpened() else (False, None)
        if not ok or image is None:
            cap.release()
            raise UniadError(self._never_opened())
        if not self.live:
            self.claimed = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        self._cap, self._pending = cap, image

    def _never_opened(self) -> str:
        if isinstance(self.target, int):
            return (
                f"camera {self.target} could not be opened (no such device, or busy); check the "
                "index (e.g. `v4l2-ctl --list-devices`) or pass a file, folder or URL with --source"
            )
        if self.live:
            return f"cannot open live source {self.description}: no frame received"
        return f"cannot read video {self.description}: not a video OpenCV can decode, or empty"

    def read(self) -> tuple[np.ndarray, str] | None:
        if self._pending is not None:
            image, self._pending = self._pending, None
        elif self._cap is None:
            return None
        else:
            ok, image = self._cap.read()
            if not ok or image is None:
                return None
        self.decoded += 1
        return image, ""

    def finished_note(self) -> str | None:
        if self.live or self.decoded >= self.claimed:
            return None
        return (
            f"video {self.description} ended after {self.decoded} of the {self.claimed} frames "
            "its container claims: the file is truncated or damaged"
        )

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def is_camera_index(source: str | int) -> bool:
    return isinstance(source, int) or source.strip().isdigit()


def camera(source: str | int, bit_depth: int | None) -> Reader:
    index = int(source)
    return VideoReader(
        index, cv2.CAP_ANY, live=True, description=f"camera {index}", patience_s=DEVICE_PATIENCE_S
    )


def is_pipeline(source: str | int) -> bool:
    return isinstance(source, str) and "!" in source


def pipeline(source: str | int, bit_depth: int | None) -> Reader:
    if not _has_gstreamer():
        raise UniadError(
            "the source looks like a GStreamer pipeline, but this OpenCV build has no "
            "GStreamer support; on Jetson use the system OpenCV (python3-opencv) built with it"
        )
    return VideoReader(str(source), cv2.CAP_GSTREAMER, live=True, description="GStreamer pipeline")


def is_url(source: str | int) -> bool:
    return isinstance(source, str) and URL_PATTERN.match(source) is not None


def url(source: str | int, bit_depth: int | None) -> Reader:
    return VideoReader(str(source), cv2.CAP_FFMPEG, live=True, description=redact_url(str(source)))


def video_file(path: str, description: str) -> Reader:
    return VideoReader(path, cv2.CAP_ANY, live=False, description=description)


def _has_gstreamer() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False
