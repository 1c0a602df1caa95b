"""Overlap capture, inference and the caller's drawing/logging: three threads, bounded queues.

capture thread (FrameStream) -> inference thread (resize into a reused buffer + backend) ->
caller's thread (verdict, overlay, logging, display). OpenCV and the backends release the GIL
while they work, so each stage runs while the others wait; the bounded queues keep memory flat.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from .capture import Frame, FrameStream
from .detector import Detection, Detector

_END = object()


class Pipeline:
    """Iterate over (frame, detection) pairs in capture order; `stop()` drains and ends cleanly."""

    def __init__(self, detector: Detector, stream: FrameStream, queue_size: int = 4) -> None:
        self.detector = detector
        self.stream = stream
        self._results: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._abandoned = threading.Event()
        self._thread = threading.Thread(target=self._infer_loop, name="uniad-infer", daemon=True)

    def stop(self) -> None:
        """Stop capturing; frames already captured are still scored and handed over."""
        self._stop.set()
        self.stream.stop()

    def _infer_loop(self) -> None:
        try:
            while not self._abandoned.is_set():
                frame = self.stream.get(timeout=0.1)
                if frame is None:
                    if self.stream.finished or self._stop.is_set():
                        break
                    continue
                self._put((frame, self.detector(frame.image)))
        except BaseException as exc:  # handed to the caller's thread, which re-raises it
            self._put(exc)
        finally:
            self.stream.stop()
            self._put(_END)

    def _put(self, item: object) -> None:
        while not self._abandoned.is_set():
            try:
                self._results.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[tuple[Frame, Detection]]:
        self._thread.start()
        try:
            while True:
                try:
                    item = self._results.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            self._abandoned.set()
            self.stream.stop()
            self._thread.join(timeout=5)
            self.stream.join(timeout=5)
