"""The reader thread: a `Reader` runs on its own thread while the model works.

Live sources keep only the newest frame (a station wants the part in front of the camera now,
not a backlog), counting every frame it replaces as dropped; files and folders are never
dropped, the reader waits instead. A live source that fails is reopened with capped exponential
backoff: for ever, a bounded number of times, or (the default, `AUTO`) as long as its reader's
`patience_s` allows (a local camera index: seconds; a URL: for ever); once it gives up its state
is "failed" so the caller can exit non-zero. One that is down at start-up (a station that boots
before its camera) follows the same policy. Every frame is named uniquely: its path under the
source root for folders and globs, its index and capture time for videos and cameras. An
unreadable image becomes a frame carrying an `error`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

from ...errors import UniadError
from .base import AUTO, FOREVER, Frame, Reader, SourceRefused, Unreadable
from .sources import make_reader

log = logging.getLogger(__name__)


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
        max_reconnects: int | str | None = AUTO,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.reader = reader
        self.live = reader.live
        self._auto = max_reconnects == AUTO
        self.max_reconnects: int | None = FOREVER if self._auto else max_reconnects  # type: ignore[assignment]
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_change = on_change
        self.dropped = 0
        self.captured = 0
        self.reconnects = 0
        self.state = "connected"
        self._said = ""  # the last reason a reopen failed that was logged, so it is said once
        self._buffer: deque[Frame] = deque(maxlen=1 if reader.live else max(1, queue_size))
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="uniad-capture", daemon=True)

    @property
    def lost(self) -> int:
        """Frames the source reports it never delivered (`Reader.lost`)."""
        return self.reader.lost

    @property
    def patience_s(self) -> float | None:
        """Read from the reader each time: one may wait longer once it has been up."""
        return self.reader.patience_s if self._auto else None

    @property
    def description(self) -> str:
        return self.reader.description

    def start(self) -> FrameStream:
        try:
            self.reader.open()
        except UniadError as exc:
            if not self.live or isinstance(exc, SourceRefused):
                raise
            log.warning("%s; retrying (reconnect tries: %s)", exc, self._tries_label)
            self._said = str(exc)
            self.state = "reconnecting"
        self._thread.start()
        return self

    @property
    def _tries_label(self) -> str:
        if self.patience_s is not None:
            return f"{self.patience_s:g} s max"
        return "forever" if self.max_reconnects is FOREVER else str(self.max_reconnects)

    def stop(self) -> None:
        """Ask the reader thread to finish; frames already queued can still be taken."""
        self._stop.set()
        self.reader.stop()
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
                    note = self.reader.finished_note()
                    if note is not None:
                        log.warning("%s", note)
                    break
                image, name = got
                now = time.time()
                frame = Frame(
                    self.captured,
                    None,
                    now,
                    capture_ms,
                    name or _frame_name(self.captured, now),
                    facts=self.reader.frame_facts(),
                    triggered=self.reader.frame_triggered(),
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
        """Reopen a failed live source with capped backoff; False once attempts or patience
        run out (state "failed") or on stop. `first`: it has never opened, so a success is no
        reconnect, and its retries are quiet: `start` said why once, with the hint."""
        delay = min(self.backoff_s, self.max_backoff_s)
        attempt = 0
        limit = self._tries_label
        deadline = None if self.patience_s is None else time.monotonic() + self.patience_s
        self.state = "reconnecting"
        while self.max_reconnects is FOREVER or attempt < self.max_reconnects:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                log.error(
                    "%s: not up after %g s; giving up (pass --reconnect-tries forever, or "
                    'reconnect_tries = "forever" in a station file, to wait for it)',
                    self.description,
                    self.patience_s,
                )
                self.state = "failed"
                return False
            attempt += 1
            self.reader.close()
            wait = delay if left is None else min(delay, left)
            log.log(
                logging.DEBUG if first else logging.WARNING,
                "%s failed; reconnecting in %.1f s (attempt %d/%s)",
                self.description,
                wait,
                attempt,
                limit,
            )
            if self._stop.wait(wait):
                return False
            try:
                self.reader.open()
            except UniadError as exc:
                log.log(logging.DEBUG if str(exc) == self._said else logging.WARNING, "%s", exc)
                self._said = str(exc)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            self.reconnects += 0 if first else 1
            self.state = "connected"
            self._said = ""
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
    max_reconnects: int | str | None = AUTO,
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
