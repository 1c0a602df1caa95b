"""Callback sink: in-process subscribers (a web server, a test, a PLC bridge) get each verdict."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .base import Sink, SinkContext, Subscriber, Verdict

log = logging.getLogger(__name__)


class CallbackSink(Sink):
    """Calls every subscriber on the output thread; a subscriber that raises is logged, and the
    others and the station go on."""

    name = "callback"

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()
        self.failures = 0

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Add `callback`; returns the function that removes it again."""
        with self._lock:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def emit(self, verdict: Verdict) -> None:
        for callback in self._subscribers:
            try:
                callback(verdict)
            except Exception:
                self.failures += 1
                log.exception("subscriber %r failed on a verdict", callback)

    def summary(self) -> dict[str, int]:
        return {"subscriber failures": self.failures} if self.failures else {}


def from_context(context: SinkContext) -> CallbackSink:
    return CallbackSink()
