"""Result sinks: where each verdict goes. A new sink is one module here plus one `SINKS` entry.

The sink interface (`base.py`):

- Each `SINKS` entry is `from_context(context: SinkContext) -> Sink | None`: the sink, or None
  when the station's settings (`context.config`) do not ask for it. The context is narrow on
  purpose (settings, camera names, counters, model id, threshold provenance, `subscribe`,
  `trigger`, `stop`); a sink never sees the `Station`.
- A `Sink` implements `emit(verdict)`, and may implement `close()` (flush and release, once,
  when the station ends) and `summary() -> dict[str, int]` (counts for the station's summary
  and serve's `/metrics`, e.g. records not written). `emit` must not raise for a bad day
  (a full disk, a broker away): `PauseOnError` is the shared pause-and-retry rule for writers.
- A `Verdict` is one frozen record (`verdict.record`, a `record.VerdictRecord`: typed fields,
  and a read-only mapping over the JSONL schema; `verdict.document()` is the log line) with its
  camera's counters just after it (`verdict.counts`: read them, never count again), the frame,
  the scored image, the `Detection` (None when nothing was scored) and the evidence name.
  `record.verdict` is "OK", "NG", "ERROR" (a frame not prepared, a backend error, a non-finite
  map or score: `record.error` says why) or None (the model ships no threshold: kind
  UNSCORED); `record.is_ok` is True only for "OK", so a sink that counts not-OK never passes
  an ERROR.

Sinks run in table order on the station's output thread: evidence images are on disk before
the log line and the MQTT message that announce them.
"""

from __future__ import annotations

from collections.abc import Callable

from . import callback, display, images, jsonl, mqtt, opcua
from .base import PauseOnError, Sink, SinkContext, SinkSettings, Verdict

SINKS: dict[str, Callable[[SinkContext], Sink | None]] = {
    "images": images.from_context,
    "jsonl": jsonl.from_context,
    "mqtt": mqtt.from_context,
    "opcua": opcua.from_context,
    "display": display.from_context,
    "callback": callback.from_context,
}

__all__ = ["SINKS", "PauseOnError", "Sink", "SinkContext", "SinkSettings", "Verdict"]
