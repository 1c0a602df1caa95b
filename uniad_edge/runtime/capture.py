"""Frame sources for the runtime: cameras, video files, image folders/globs, URLs, GStreamer.

A reader thread grabs frames while the model works. Live sources keep only the newest frame (a
station wants the part in front of the camera now, not a backlog), counting every frame it
replaces as dropped; files and folders are never dropped, the reader waits instead. A live
source that fails is reopened with exponential backoff a bounded number of times, then the
stream ends cleanly.
"""

from __future__ import annotations

import glob
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import UniadError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
URL_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass
class Frame:
    """A captured frame. `index` counts captured frames, so gaps in a log show drops."""

    index: int
    image: np.ndarray
    timestamp: float
    capture_ms: float
    name: str = ""


class Reader(ABC):
    """A blocking frame producer; the `FrameStream` thread drives it."""

    live: bool = False
    description: str = ""

    @abstractmethod
    def open(self) -> None:
        """Open the source, raising `UniadError` with the fix when it cannot be opened."""

    @abstractmethod
    def read(self) -> tuple[np.ndarray, str] | None:
        """Next (image, name), or None at the end of the stream or on failure."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or file."""


class VideoReader(Reader):
    """cv2.VideoCapture over a camera index, video file, URL or GStreamer pipeline."""

    def __init__(self, target: int | str, api: int, live: bool, description: str) -> None:
        self.target = target
        self.api = api
        self.live = live
        self.description = description
        self._cap: cv2.VideoCapture | None = None
        self._pending: np.ndarray | None = None

    def open(self) -> None:
        cap = cv2.VideoCapture(self.target, self.api)
        ok, image = cap.read() if cap.isOpened() else (False, None)
        if not ok or image is None:
            cap.release()
            raise UniadError(self._never_opened())
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
            return image, ""
        if self._cap is None:
            return None
        ok, image = self._cap.read()
        return (image, "") if ok and image is not None else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class ImageListReader(Reader):
    """Images from a folder or glob, in name order; unreadable files are skipped and counted."""

    def __init__(self, paths: list[Path], description: str) -> None:
        self.paths = paths
        self.description = description
        self.skipped = 0
        self._next = 0

    def open(self) -> None:
        self._next = 0

    def read(self) -> tuple[np.ndarray, str] | None:
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            # IMREAD_COLOR: OpenCV's documented rule maps 16-bit files to 8 bits and grey to BGR.
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return image, path.name
            self.skipped += 1
            log.warning("skipping unreadable image %s", path)
        return None

    def close(self) -> None:
        """Files are opened per read; nothing stays open."""


def make_reader(source: str | int) -> Reader:
    """The reader for a `--camera` index or a `--source` string."""
    if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
        index = int(source)
        return VideoReader(index, cv2.CAP_ANY, live=True, description=f"camera {index}")
    if "!" in source:
        if not _has_gstreamer():
            raise UniadError(
                "the source looks like a GStreamer pipeline, but this OpenCV build has no "
                "GStreamer support; on Jetson use the system OpenCV (python3-opencv) built with it"
            )
        return VideoReader(source, cv2.CAP_GSTREAMER, live=True, description="GStreamer pipeline")
    if URL_PATTERN.match(source):
        return VideoReader(source, cv2.CAP_FFMPEG, live=True, description=source)
    path = Path(source).expanduser()
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return _image_reader(images, source)
    if any(ch in source for ch in "*?["):
        matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        return _image_reader([p for p in matches if p.suffix.lower() in IMAGE_SUFFIXES], source)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageListReader([path], source)
        return VideoReader(str(path), cv2.CAP_ANY, live=False, description=source)
    raise UniadError(
        f"source {source!r} not found: pass a video file, an image folder or glob, an "
        "rtsp:// or http:// URL, a GStreamer pipeline, or use --camera N"
    )


def _image_reader(images: list[Path], source: str) -> ImageListReader:
    if not images:
        raise UniadError(
            f"no images in {source!r} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return ImageListReader(images, source)


def _has_gstreamer() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


class FrameStream:
    """Runs a `Reader` on its own thread and hands frames over, as an iterator.

    `start()` opens the source in the caller's thread, so a source that never opens is an
    immediate `UniadError`, not a silent empty stream.
    """

    def __init__(
        self,
        reader: Reader,
        *,
        queue_size: int = 4,
        max_reconnects: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
    ) -> None:
        self.reader = reader
        self.live = reader.live
        self.max_reconnects = max_reconnects
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.dropped = 0
        self.captured = 0
        self.reconnects = 0
        self._buffer: deque[Frame] = deque(maxlen=1 if reader.live else max(1, queue_size))
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="uniad-capture", daemon=True)

    @property
    def description(self) -> str:
        return self.reader.description

    def start(self) -> FrameStream:
        self.reader.open()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the reader thread to finish; frames already queued can still be taken."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                got = self.reader.read()
                capture_ms = (time.perf_counter() - t0) * 1e3
                if got is None:
                    if self.live and self._reconnect():
                        continue
                    break
                image, name = got
                frame = Frame(self.captured, image, time.time(), capture_ms, name)
                self.captured += 1
                self._put(frame)
        except Exception:
            log.exception("capture from %s failed", self.description)
        finally:
            self.reader.close()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self.live:
                if self._buffer:
                    self.dropped += 1
            else:
                while len(self._buffer) >= (self._buffer.maxlen or 1):
                    if self._stop.is_set():
                        return
                    self._cond.wait(0.1)
            self._buffer.append(frame)
            self._cond.notify_all()

    def _reconnect(self) -> bool:
        """Reopen a failed live source with backoff; False once attempts run out or on stop."""
        delay = self.backoff_s
        for attempt in range(1, self.max_reconnects + 1):
            self.reader.close()
            log.warning(
                "%s failed; reconnecting in %.1f s (attempt %d/%d)",
                self.description,
                delay,
                attempt,
                self.max_reconnects,
            )
            if self._stop.wait(delay):
                return False
            try:
                self.reader.open()
            except UniadError as exc:
                log.warning("%s", exc)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            self.reconnects += 1
            log.warning("%s reconnected", self.description)
            return True
        log.error("%s: giving up after %d reconnect attempts", self.description, attempt)
        return False

    def get(self, timeout: float | None = None) -> Frame | None:
        """Next frame; None at the end of the stream (or after `timeout` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._buffer:
                if self._done:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining if remaining is not None else 0.1)
            frame = self._buffer.popleft()
            self._cond.notify_all()
            return frame

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.get()) is not None:
            yield frame

    @property
    def finished(self) -> bool:
        with self._cond:
            return self._done and not self._buffer


def open_source(
    source: str | int, *, max_reconnects: int = 5, backoff_s: float = 0.5
) -> FrameStream:
    """Open a `--camera` index or `--source` string and start its reader thread."""
    reader = make_reader(source)
    return FrameStream(reader, max_reconnects=max_reconnects, backoff_s=backoff_s).start()
