"""Verdicts fanned out to the dashboard's Server-Sent Event streams, plus recent history.

The hub is a sink of the station: every verdict (a camera's or an API request's) becomes one
event: its JSONL line (`Verdict.document`) plus `seq` (a number per event), `gallery` (the
overlay the evidence sink saved, or None) and `counts` (the camera's counters just after it,
`VerdictCounts.by_kind`: the station's own, so the dashboard, `/metrics`, OPC UA and the
summary agree). Each subscriber is an asyncio queue on the server's event loop, fed with
`call_soon_threadsafe`. A client too slow to keep up loses events (its queue is bounded) rather
than growing the server's memory; on connect every client first gets a snapshot (counters and
the last minutes of verdicts), so a page opened late or reconnecting still draws the full chart.
The hub also keeps each camera's newest verdict, for the dashboard's images and triggers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from ..runtime.detector import Detection
from ..runtime.sinks import Sink, Verdict

SUBSCRIBER_QUEUE = 256
CLOSED = None
Latest = tuple[np.ndarray, dict[str, Any], Detection | None]


class EventHub(Sink):
    """Thread-safe publish (the station's output thread), asyncio-side subscribe."""

    name = "events"

    def __init__(self, history_s: float = 300.0, max_history: int = 5000) -> None:
        self.history_s = history_s
        self._history: deque[dict[str, Any]] = deque(maxlen=max_history)
        self._counters: dict[str, dict[str, int]] = {}
        self._subscribers: dict[asyncio.Queue[dict[str, Any] | None], asyncio.AbstractEventLoop]
        self._subscribers = {}
        self._latest: dict[str, Latest] = {}
        self._lock = threading.Condition()
        self._seq = 0
        self.closed = False

    def emit(self, verdict: Verdict) -> None:
        """Remember and send one verdict event to every open stream."""
        overlay = (verdict.evidence or {}).get("overlay")
        counts = verdict.counts.by_kind() | {"lost": verdict.counts.lost}
        with self._lock:
            self._seq += 1
            event = verdict.document() | {"seq": self._seq, "gallery": overlay, "counts": counts}
            if verdict.image is not None:
                self._latest[verdict.camera] = (verdict.image, event, verdict.detection)
            self._counters[verdict.camera] = counts
            self._history.append(event)
            targets = list(self._subscribers.items())
            self._lock.notify_all()
        for subscriber, loop in targets:
            loop.call_soon_threadsafe(_offer, subscriber, event)

    def latest(self, camera: str) -> Latest | None:
        """The camera's newest scored image, its event and its detection."""
        with self._lock:
            return self._latest.get(camera)

    def wait_for(self, camera: str, index: int, timeout: float) -> None:
        """Until the event of `camera`'s frame `index` (or a later one) was published."""
        with self._lock:
            self._lock.wait_for(
                lambda: camera in self._latest and self._latest[camera][1]["index"] >= index,
                timeout=timeout,
            )

    def snapshot(self) -> dict[str, Any]:
        """Counters per camera and the verdicts of the last `history_s` seconds."""
        since = time.time() - self.history_s
        with self._lock:
            return {
                "counters": {k: dict(v) for k, v in self._counters.items()},
                "history": [e for e in self._history if e["timestamp"] >= since],
                "history_s": self.history_s,
            }

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        """A queue on the running loop that receives every event published from now on."""
        subscriber: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        with self._lock:
            if self.closed:
                subscriber.put_nowait(CLOSED)
            self._subscribers[subscriber] = asyncio.get_running_loop()
        return subscriber

    def unsubscribe(self, subscriber: asyncio.Queue[dict[str, Any] | None]) -> None:
        with self._lock:
            self._subscribers.pop(subscriber, None)

    def close(self) -> None:
        """End every stream (the station ended): each subscriber receives `CLOSED`."""
        with self._lock:
            self.closed = True
            targets = list(self._subscribers.items())
        for subscriber, loop in targets:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_offer, subscriber, CLOSED)


def _offer(subscriber: asyncio.Queue[dict[str, Any] | None], event: dict[str, Any] | None) -> None:
    if subscriber.full():
        if event is not CLOSED:
            return  # a stalled client misses events; the others are not held up
        subscriber.get_nowait()
    subscriber.put_nowait(event)
