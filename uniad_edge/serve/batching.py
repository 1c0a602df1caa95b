"""Group concurrent scoring requests into one backend batch, behind a bounded queue.

Requests from HTTP handlers and camera threads wait in one queue; a single worker takes
whatever is waiting (up to the model's batch) and runs it as one `Detector.predict` call. No
timer holds a lone request back: batches form by themselves while the backend is busy. A full
queue refuses new HTTP work at once (the caller answers 503) instead of growing without limit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from ..errors import UniadError
from ..runtime.detector import Detection, Detector


class QueueFull(UniadError):
    """The scoring queue holds `queue_size` requests already: try again shortly."""


@dataclass
class _Job:
    image: np.ndarray
    threshold: float | None
    future: Future[Detection] = field(default_factory=Future)


_STOP = object()


class BatchScorer:
    """Scores images on one `Detector` from any thread, batching what arrives together."""

    def __init__(
        self,
        detector: Detector,
        *,
        max_batch: int,
        queue_size: int,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.detector = detector
        self._detector_lock = threading.Lock()  # held for a batch; a swap waits for it
        self.max_batch = max(1, max_batch)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._on_batch = on_batch
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._work, name="uniad-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Requests waiting (not counting the batch on the backend now)."""
        return self._queue.qsize()

    def submit(
        self, image: np.ndarray, threshold: float | None, *, wait: bool = False
    ) -> Future[Detection]:
        """Queue one BGR image, to be judged against `threshold`. `wait=False` (HTTP) raises
        `QueueFull` at once when full; `wait=True` blocks until there is room or it closes."""
        if self._closed.is_set():
            raise UniadError("the scoring service is shutting down")
        job = _Job(image, threshold)
        while True:
            try:
                self._queue.put(job, block=wait, timeout=0.1 if wait else None)
                return job.future
            except queue.Full:
                if not wait:
                    raise QueueFull(f"scoring queue full ({self._queue.maxsize} waiting)") from None
                if self._closed.is_set():
                    raise UniadError("the scoring service is shutting down") from None

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            jobs = [first]
            while len(jobs) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._queue.put(_STOP)  # finish this batch, stop on the next turn
                    break
                jobs.append(nxt)
            self._run(jobs)  # type: ignore[arg-type]

    def _run(self, jobs: list[_Job]) -> None:
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            with self._detector_lock:
                detections = self.detector.predict(
                    [job.image for job in live], [job.threshold for job in live]
                )
        except Exception as exc:  # each waiting caller gets the error, the worker lives on
            for job in live:
                job.future.set_exception(exc)
            return
        for job, detection in zip(live, detections, strict=True):
            job.future.set_result(detection)
        if self._on_batch is not None:
            self._on_batch(len(live), self.depth)

    def use(self, detector: Detector) -> Detector:
        """Score the next batches on `detector`; returns the previous one, which no batch is
        using any more once this returns."""
        with self._detector_lock:
            old, self.detector = self.detector, detector
        return old

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new work, finish every queued request, stop the worker."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._queue.put(_STOP)
        self._thread.join(timeout)
