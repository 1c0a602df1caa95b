"""Frame sources for the runtime: cameras, video files, image folders/globs, URLs, GStreamer.

A reader thread grabs frames while the model works. Live sources keep only the newest frame (a
station wants the part in front of the camera now, not a backlog), counting every frame it
replaces as dropped; files and folders are never dropped, the reader waits instead. A live
source that fails is reopened with capped exponential backoff (forever by default, or a bounded
number of times, after which its state is "failed" so the caller can exit non-zero); one that
is down at start-up (a station that boots before its camera) follows the same policy. Every frame
is named uniquely: its path under the source root for folders and globs, its index and capture
time for videos and cameras. An unreadable image becomes a frame carrying an `error`.
"""

from __future__ import annotations

import glob
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import UniadError
from ..pngcheck import png_problem

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
URL_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
URL_TIMEOUT_MS = 5000


FOREVER = None  # `max_reconnects` value: a live source is reopened until the stream is stopped
LOW_BITS_MARGIN = 2  # warn when a 16-bit frame leaves this many top bits of its depth unused


@dataclass
class Frame:
    """A captured frame. `index` counts captured frames, so gaps in a log show drops. `image`
    is None when the item could not be read; `error` then says why."""

    index: int
    image: np.ndarray | None
    timestamp: float
    capture_ms: float
    name: str = ""
    error: str | None = None


@dataclass
class Unreadable:
    """What `Reader.read` returns in place of an image that exists but cannot be decoded."""

    reason: str


class Reader(ABC):
    """A blocking frame producer; the `FrameStream` thread drives it."""

    live: bool = False
    description: str = ""

    @abstractmethod
    def open(self) -> None:
        """Open the source, raising `UniadError` with the fix when it cannot be opened."""

    @abstractmethod
    def read(self) -> tuple[np.ndarray | Unreadable, str] | None:
        """Next (image, name), or None at the end of the stream or on failure. An empty name
        lets the stream name the frame by its index and capture time."""

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
    """Images from a folder or glob, in name order, named by their path under `root`.

    16-bit files (12- or 10-bit sensors store their pixels in 16-bit PNG/TIFF) are kept as
    uint16 when `bit_depth` is given, for the detector to scale; without it they are mapped to 8
    bits by their top byte, as OpenCV does, and a file that uses only the low bits is warned
    about once, since its frames then look nearly black to the model.
    """

    def __init__(
        self, paths: list[Path], description: str, root: Path, bit_depth: int | None = None
    ) -> None:
        self.paths = paths
        self.description = description
        self.root = root
        self.bit_depth = bit_depth
        self.skipped = 0
        self.low_bits_warned = False
        self._next = 0

    def open(self) -> None:
        self._next = 0

    def read(self) -> tuple[np.ndarray | Unreadable, str] | None:
        if self._next >= len(self.paths):
            return None
        path = self.paths[self._next]
        self._next += 1
        name = _relative_name(path, self.root)
        image, problem = _decode(path)
        if image is None or image.dtype not in (np.uint8, np.uint16):
            self.skipped += 1
            log.warning("unreadable image %s%s", path, f" ({problem})" if problem else "")
            return Unreadable(
                f"cannot read image {path}: {problem or 'not an 8/16-bit image OpenCV can decode'}"
            ), name
        if image.dtype == np.uint16:
            self._check_low_bits(image, path)
            if self.bit_depth is None:
                image = (image >> 8).astype(np.uint8)
        return image, name

    def _check_low_bits(self, image: np.ndarray, path: Path) -> None:
        depth = self.bit_depth or 16
        peak = int(image.max())
        if self.low_bits_warned or peak >> (depth - LOW_BITS_MARGIN):
            return
        self.low_bits_warned = True
        used = max(peak.bit_length(), 1)
        log.warning(
            "%s is 16-bit but uses only its low %d bits (maximum %d) of %d: it looks like a "
            "%d-bit sensor image; pass --bit-depth %d (bit_depth=) or frames look nearly black",
            path,
            used,
            peak,
            depth,
            max(used, 9),
            max(used, 9),
        )

    def close(self) -> None:
        """Files are opened per read; nothing stays open."""


def _decode(path: Path) -> tuple[np.ndarray | None, str | None]:
    """(pixels, None), or (None, why) for a damaged PNG, which never reaches libpng (it would
    print its own stderr line before our warning)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        return None, exc.strerror or str(exc)
    problem = png_problem(data)
    if problem is not None or not data.size:
        return None, problem
    return cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR), None


def _relative_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _glob_root(pattern: str) -> Path:
    """The folder above the first wildcard of a glob: frame names are relative to it."""
    parts = Path(pattern).expanduser().parts
    fixed = [p for p in parts[: next(i for i, p in enumerate(parts) if any(c in p for c in "*?["))]]
    return Path(*fixed) if fixed else Path(".")


def make_reader(source: str | int, bit_depth: int | None = None) -> Reader:
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
        return _image_reader(images, source, path, bit_depth)
    if path.is_file():  # before globbing: `line[1].mp4` names a file, not a pattern
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageListReader([path], source, path.parent, bit_depth)
        return VideoReader(str(path), cv2.CAP_ANY, live=False, description=source)
    if any(ch in source for ch in "*?["):
        matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        images = [p for p in matches if p.suffix.lower() in IMAGE_SUFFIXES]
        return _image_reader(images, source, _glob_root(source), bit_depth)
    raise UniadError(
        f"source {source!r} not found: pass a video file, an image folder or glob, an "
        "rtsp:// or http:// URL, a GStreamer pipeline, or use --camera N"
    )


def _image_reader(
    images: list[Path], source: str, root: Path, bit_depth: int | None
) -> ImageListReader:
    if not images:
        raise UniadError(
            f"no images in {source!r} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return ImageListReader(images, source, root, bit_depth)


def _has_gstreamer() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


class FrameStream:
    """Runs a `Reader` on its own thread and hands frames over, as an iterator.

    `start()` opens the source in the caller's thread, so a file that cannot be read is an
    immediate `UniadError`, not a silent empty stream; a live source that cannot be opened yet
    gets one warning and is retried on the reader thread under the reconnect policy (a camera
    may come up after the station). `state` is "connected", "reconnecting",
    "failed" (a live source that gave up) or "ended" (end of file, or stopped). `on_change` is
    called from the reader thread after each new frame and when the stream ends, so a consumer
    of several streams can sleep until one of them has something.
    """

    def __init__(
        self,
        reader: Reader,
        *,
        queue_size: int = 4,
        max_reconnects: int | None = FOREVER,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.reader = reader
        self.live = reader.live
        self.max_reconnects = max_reconnects
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_change = on_change
        self.dropped = 0
        self.captured = 0
        self.reconnects = 0
        self.state = "connected"
        self._buffer: deque[Frame] = deque(maxlen=1 if reader.live else max(1, queue_size))
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="uniad-capture", daemon=True)

    @property
    def description(self) -> str:
        return self.reader.description

    def start(self) -> FrameStream:
        try:
            self.reader.open()
        except UniadError as exc:
            if not self.live:
                raise
            log.warning("%s; retrying (reconnect tries: %s)", exc, self._tries_label)
            self.state = "reconnecting"
        self._thread.start()
        return self

    @property
    def _tries_label(self) -> str:
        return "forever" if self.max_reconnects is FOREVER else str(self.max_reconnects)

    def stop(self) -> None:
        """Ask the reader thread to finish; frames already queued can still be taken."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            if self.state == "reconnecting" and not self._reconnect(first=True):
                return
            while not self._stop.is_set():
                t0 = time.perf_counter()
                got = self.reader.read()
                capture_ms = (time.perf_counter() - t0) * 1e3
                if got is None:
                    if self.live and not self._stop.is_set() and self._reconnect():
                        continue
                    break
                image, name = got
                now = time.time()
                frame = Frame(
                    self.captured, None, now, capture_ms, name or _frame_name(self.captured, now)
                )
                if isinstance(image, Unreadable):
                    frame.error = image.reason
                else:
                    frame.image = image
                self.captured += 1
                self._put(frame)
        except Exception:
            log.exception("capture from %s failed", self.description)
            self.state = "failed"
        finally:
            self.reader.close()
            with self._cond:
                self._done = True
                if self.state != "failed":
                    self.state = "ended"
                self._cond.notify_all()
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

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
        self._changed()

    def _reconnect(self, first: bool = False) -> bool:
        """Reopen a failed live source with capped backoff; False once attempts run out (state
        "failed") or on stop. `first`: it has never opened, so a success is no reconnect."""
        delay = min(self.backoff_s, self.max_backoff_s)
        attempt = 0
        limit = self._tries_label
        self.state = "reconnecting"
        while self.max_reconnects is FOREVER or attempt < self.max_reconnects:
            attempt += 1
            self.reader.close()
            log.warning(
                "%s failed; reconnecting in %.1f s (attempt %d/%s)",
                self.description,
                delay,
                attempt,
                limit,
            )
            if self._stop.wait(delay):
                return False
            try:
                self.reader.open()
            except UniadError as exc:
                log.warning("%s", exc)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            self.reconnects += 0 if first else 1
            self.state = "connected"
            log.warning("%s %s", self.description, "connected" if first else "reconnected")
            return True
        log.error("%s: giving up after %d reconnect attempts", self.description, attempt)
        self.state = "failed"
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
        """The reader has ended and every frame it captured has been taken."""
        with self._cond:
            return self._done and not self._buffer

    @property
    def done(self) -> bool:
        """The reader has ended (frames may still be waiting to be taken)."""
        return self._done


def _frame_name(index: int, timestamp: float) -> str:
    """A video or camera frame's unique name: its index and its capture time (UTC)."""
    return f"{index:08d}@{utc_stamp(timestamp)}"


def utc_stamp(timestamp: float) -> str:
    """`timestamp` as UTC to the millisecond, e.g. 20261129T133846.123Z: fixed width, so names
    holding it sort chronologically, and safe in a file name (no colons)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(timestamp))
    return f"{stamp}.{int(timestamp * 1000) % 1000:03d}Z"


def open_source(
    source: str | int,
    *,
    max_reconnects: int | None = FOREVER,
    backoff_s: float = 0.5,
    max_backoff_s: float = 8.0,
    bit_depth: int | None = None,
    on_change: Callable[[], None] | None = None,
) -> FrameStream:
    """Open a `--camera` index or `--source` string and start its reader thread."""
    reader = make_reader(source, bit_depth)
    stream = FrameStream(
        reader,
        max_reconnects=max_reconnects,
        backoff_s=backoff_s,
        max_backoff_s=max_backoff_s,
        on_change=on_change,
    )
    return stream.start()
