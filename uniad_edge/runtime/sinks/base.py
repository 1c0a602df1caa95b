"""What every result sink receives and implements (`Verdict`, `SinkContext`, `Sink`), and the
pause-and-retry rule for writers."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ...errors import UniadError
from ..capture import Frame
from ..detector import Detection
from ..opcua.config import OpcuaConfig
from ..record import VerdictCounts, VerdictRecord

log = logging.getLogger("uniad_edge.runtime.sinks")


@dataclass
class Verdict:
    """One scored (or unreadable) frame as the sinks see it.

    `record` is the frozen `VerdictRecord` (what the log, MQTT, OPC UA and the API read);
    `counts` are its camera's counters just after it (every sink reports the same numbers, in
    verdict order); `image` is the frame as scored, after any ROI crop (None when the frame
    could not be read); `detection` is None for error records. `evidence_stem`
    (`recorder.evidence_stem`, decided once by the station) is the name the evidence sink
    saves the frame under; once saved, the file names are `evidence` (set once, by that sink:
    the record itself never changes), and `document()` carries them.
    """

    camera: str
    record: VerdictRecord
    frame: Frame
    image: np.ndarray | None
    detection: Detection | None
    save: str = "ng"
    evidence_stem: str = field(kw_only=True)
    counts: VerdictCounts = field(kw_only=True, default_factory=VerdictCounts)
    evidence: Mapping[str, str] | None = field(kw_only=True, default=None)

    def attach_evidence(self, names: Mapping[str, str]) -> None:
        """The evidence sink's file names (once)."""
        if self.evidence is not None:
            raise UniadError(f"evidence of {self.evidence_stem} was already saved")
        self.evidence = dict(names)

    def document(self) -> dict[str, Any]:
        """The JSON-ready log line: the record, plus the evidence files when saved."""
        out = self.record.to_dict()
        if self.evidence is not None:
            out["evidence"] = dict(self.evidence)
        return out


class SinkSettings(Protocol):
    """The station settings sinks read (the station passes its `StationConfig`). A sink that
    needs a new setting adds the field to `StationConfig` and names it here."""

    name: str
    log: Path | None
    save_dir: Path | None
    log_max_mb: float | None
    log_keep: int
    keep_evidence: str | int | None
    write_retry_s: float
    mqtt: str | None
    mqtt_buffer: int
    mqtt_drain_s: float
    opcua: OpcuaConfig | None
    show: bool


Subscriber = Callable[[Verdict], None]


@dataclass(frozen=True)
class SinkContext:
    """All a sink may know of the station that runs it: never the `Station` itself, so sinks
    and the station import in one direction only.

    - `config`: the station's settings (`SinkSettings`).
    - `cameras`: the camera names, in configuration order.
    - `counters()`: per camera, a JSON-ready dict (`status`, `fps`, `frames`, `ok`, `ng`,
      `errors`, `unscored`, `dropped`, `lost`, `reconnects`, `source`, `class_name`,
      `threshold`), read when called.
    - `model_id()`: the id of the model scoring now (name@checkpoint hash prefix).
    - `threshold_provenance()`: where the cameras' thresholds come from, one line (it changes
      with a model swap, as `model_id()` does).
    - `subscribe(callback)`: `callback(verdict)` for every verdict on the output thread;
      returns the function that unsubscribes.
    - `trigger(camera, part_id)`: ask for the verdict of the camera's next frame; the future
      gets its record (as `Station.trigger_async`).
    - `stop(reason)`: ask the station to finish what is captured and end.
    """

    config: SinkSettings
    cameras: tuple[str, ...]
    counters: Callable[[], Mapping[str, Mapping[str, Any]]]
    model_id: Callable[[], str]
    threshold_provenance: Callable[[], str]
    subscribe: Callable[[Subscriber], Callable[[], None]]
    trigger: Callable[[str, str | None], Future[VerdictRecord]]
    stop: Callable[[str], None]


class Sink(ABC):
    """Takes every verdict on the station's output thread; must not raise for a bad day."""

    name: str = "sink"

    @abstractmethod
    def emit(self, verdict: Verdict) -> None:
        """Deliver one verdict (write, publish, call back)."""

    def event(self, record: dict[str, Any]) -> None:  # noqa: B027 (most sinks keep no log)
        """A station event that is not a verdict (e.g. `model_changed`), in verdict order."""

    def reopen(self) -> None:  # noqa: B027 (most sinks keep no file open)
        """Reopen the files it writes (SIGHUP after logrotate moved them); safe from a signal
        handler."""

    def close(self) -> None:  # noqa: B027 (most sinks hold nothing to release)
        """Flush and release; called once when the station ends."""

    def summary(self) -> dict[str, int]:
        """Counts for the station's summary, e.g. records not written."""
        return {}


class PauseOnError:
    """Runs a writer; on a write error (full disk, I/O error) pauses it with one warning and
    retries every `retry_s` seconds, counting what was not written meanwhile.

    A station must keep scoring and publishing when its disk fills up: losing the log for a while
    is better than stopping the line.
    """

    def __init__(self, what: str, retry_s: float, clock: Callable[[], float] = time.monotonic):
        self.what = what
        self.retry_s = retry_s
        self.clock = clock
        self.not_written = 0
        self.pauses = 0
        self._paused_until: float | None = None

    @property
    def paused(self) -> bool:
        return self._paused_until is not None

    def attempt(self, write: Callable[[], None]) -> bool:
        """Run `write` unless paused; True when it was written."""
        now = self.clock()
        if self._paused_until is not None and now < self._paused_until:
            self.not_written += 1
            return False
        try:
            write()
        except (OSError, UniadError) as exc:
            self.not_written += 1
            if self._paused_until is None:
                self.pauses += 1
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                log.warning(
                    "%s failed (%s); paused, retrying every %g s while scoring goes on",
                    self.what,
                    reason,
                    self.retry_s,
                )
            self._paused_until = now + self.retry_s
            return False
        if self._paused_until is not None:
            log.warning("%s resumed after %d items not written", self.what, self.not_written)
            self._paused_until = None
        return True
