"""Requests: images handed to a station to score beside its cameras (serve's `POST /v1/score`).

They are the camera-less input "api": scored in the same batches as the camera frames, judged
by the same rule, recorded in the same JSONL schema and sent to the same sinks. The queue is
bounded: a burst beyond `size` waiting requests is refused at once (`QueueFull`, HTTP 503)
instead of growing without limit, and no timer holds a lone request back.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import UniadError
from ..capture import Frame
from ..record import VerdictCounts
from .config import API_CAMERA, API_SOURCE
from .inputs import Work
from .stats import CameraStats


class QueueFull(UniadError):
    """The request queue holds `size` requests already: try again shortly."""


@dataclass
class Request:
    """One image to score; `future` gets its `Verdict` once every sink has run."""

    frame: Frame
    threshold: float | None
    class_name: str | None
    part_id: str | None
    future: Future[Any] = field(default_factory=Future)


class Requests:
    """The bounded queue of API requests, with their counters (camera "api"): an `Input`."""

    def __init__(self, size: int, wake: Callable[[], None]) -> None:
        self.size = size
        self.stats = CameraStats()
        self.warned_error = False
        self._wake = wake
        self._queue: deque[Request] = deque()
        self._lock = threading.Lock()
        self._index = 0
        self._closed = False

    @property
    def depth(self) -> int:
        """Requests waiting (not counting a batch on the backend now)."""
        return len(self._queue)

    def submit(
        self,
        image: np.ndarray,
        threshold: float | None,
        *,
        class_name: str | None = None,
        part_id: str | None = None,
        name: str | None = None,
    ) -> Future[Any]:
        """Queue one image; `QueueFull` when `size` wait already, `UniadError` once closed."""
        with self._lock:
            if self._closed:
                raise UniadError("the station is stopping; no more requests are scored")
            if len(self._queue) >= self.size:
                raise QueueFull(f"scoring queue full ({self.size} waiting)")
            index, self._index = self._index, self._index + 1
            frame = Frame(index, image, time.time(), 0.0, name or f"request-{index:08d}")
            request = Request(frame, threshold, class_name, part_id)
            self._queue.append(request)
        self._wake()
        return request.future

    def take(self, count: int) -> list[Request]:
        """Up to `count` waiting requests, oldest first (cancelled ones are dropped)."""
        taken: list[Request] = []
        with self._lock:
            while self._queue and len(taken) < count:
                request = self._queue.popleft()
                if request.future.set_running_or_notify_cancel():
                    taken.append(request)
        return taken

    def counts_now(self) -> VerdictCounts:
        return self.stats.counts.snapshot()

    def take_work(self, count: int) -> list[Work]:
        """Up to `count` waiting requests as the scoring loop's `Work`."""
        return [
            Work(
                API_CAMERA,
                request.frame,
                request.frame.image,
                None,
                request.threshold,
                request.class_name,
                API_SOURCE,
                "ng",
                owner=self,
                part_id=request.part_id,
                future=request.future,
            )
            for request in self.take(count)
        ]

    def close(self) -> None:
        """Refuse new requests; those already queued are still scored."""
        with self._lock:
            self._closed = True

    def fail_waiting(self, reason: str) -> None:
        """Answer every request still queued with an error (the station ended)."""
        for request in self.take(len(self._queue)):
            request.future.set_exception(UniadError(reason))
