"""The station's outputs: one record to every sink, in order, on one output thread.

The sinks are the `SINKS` table's (each built from the narrow `SinkContext`, or not, per the
settings) plus an embedder's own (serve's metrics, event hub, gallery). A verdict goes to every
sink in table order (evidence is on disk before the log line and MQTT message that announce
it); an event that is not a verdict (`model_changed`, `thresholds_changed`) goes to each sink's
`event`. A sink that raises is logged and the others still run. An API request's future gets
its verdict once every sink has run.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ..sinks import SINKS, Sink, SinkContext, Verdict
from ..sinks.callback import CallbackSink

log = logging.getLogger(__name__)
OUTPUT_QUEUE = 64
_END = object()


@dataclass
class Event:
    """A record for the log that is not a verdict (`model_changed`, `thresholds_changed`)."""

    record: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.record.get("event"))


def build_sinks(context: SinkContext, extra: Sequence[Sink]) -> list[Sink]:
    """The `SINKS` table's sinks the settings ask for, then `extra`; on a failure the sinks
    built so far are closed again."""
    sinks: list[Sink] = []
    try:
        for make in SINKS.values():
            sink = make(context)
            if sink is not None:
                sinks.append(sink)
    except BaseException:
        close_sinks(sinks)
        raise
    return sinks + list(extra)


def close_sinks(sinks: Sequence[Sink]) -> None:
    for sink in sinks:
        try:
            sink.close()
        except Exception:
            log.exception("closing the %s sink failed", sink.name)


class Outputs:
    """The output thread over `sinks`: `verdict` and `event` queue, `finish` drains."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self.callbacks = next(s for s in sinks if isinstance(s, CallbackSink))
        self._queue: queue.Queue[object] = queue.Queue(maxsize=OUTPUT_QUEUE)
        self._thread = threading.Thread(target=self._loop, name="uniad-station-out", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def verdict(self, verdict: Verdict, future: Future[Verdict] | None = None) -> None:
        """Queue `verdict` for every sink; `future` (an API request's) gets it afterwards."""
        self._put((verdict, future))

    def event(self, record: dict[str, Any]) -> None:
        self._put(Event(record))

    def finish(self) -> None:
        """Every queued item delivered, then the thread ends."""
        self._put(_END, force=True)
        self._thread.join()

    def close(self) -> None:
        close_sinks(self.sinks)

    def summary(self) -> dict[str, int]:
        """The sinks' counters (records not written, MQTT dropped, ...)."""
        counts: dict[str, int] = {}
        for sink in self.sinks:
            counts |= sink.summary()
        return counts

    def _put(self, item: object, force: bool = False) -> None:
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not force and not self._thread.is_alive():
                    return

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, Event):
                for sink in self.sinks:
                    try:
                        sink.event(item.record)
                    except Exception:
                        log.exception("the %s sink failed on a %s event", sink.name, item.kind)
                continue
            verdict, future = item  # type: ignore[misc]
            for sink in self.sinks:
                try:
                    sink.emit(verdict)
                except Exception:
                    log.exception(
                        "the %s sink failed on a verdict of %s", sink.name, verdict.camera
                    )
            if future is not None:  # an API answer once its log line and evidence are out
                future.set_result(verdict)
