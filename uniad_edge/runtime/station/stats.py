"""A station's counters: per camera while it runs, and the summary when it ends."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from ..record import VerdictCounts, VerdictRecord

STAGES = ("capture", "preprocess", "inference", "postprocess")
TRIGGER_HISTORY = 10_000  # trigger latencies kept for the summary's percentiles


@dataclass
class CameraStats:
    """Counters and latency sums of one camera, behind the status line and the summary; its
    `counts` are the ones every other consumer reads too."""

    counts: VerdictCounts = field(default_factory=VerdictCounts)
    scored: int = 0  # frames that reached the model (their latencies are summed)
    last_error: str | None = None  # what the newest ERROR record said
    latency_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    trigger_ms: deque[float] = field(default_factory=lambda: deque(maxlen=TRIGGER_HISTORY))
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=30))

    def add(self, record: VerdictRecord) -> None:
        self.counts.add(record)
        if record.error is not None:
            self.last_error = record.error
        if record.scored:
            self.scored += 1
            for key, value in record.latency_ms.items():
                self.latency_ms[key] += value
        if record.trigger_ms is not None:
            self.trigger_ms.append(record.trigger_ms)
        self.recent.append(time.perf_counter())

    @property
    def frames(self) -> int:
        return self.counts.total

    @property
    def ok(self) -> int:
        return self.counts.ok

    @property
    def ng(self) -> int:
        return self.counts.ng

    @property
    def errors(self) -> int:
        """ERROR records: not prepared, not scored, or not finite."""
        return self.counts.error

    @property
    def unscored(self) -> int:
        """Records without a verdict (no threshold)."""
        return self.counts.unscored

    @property
    def fps(self) -> float:
        """Over the last 30 frames, so the status line follows changes in load."""
        if len(self.recent) < 2:
            return 0.0
        return (len(self.recent) - 1) / max(self.recent[-1] - self.recent[0], 1e-9)

    def mean(self, key: str) -> float:
        return self.latency_ms[key] / self.scored if self.scored else 0.0


@dataclass
class CameraState:
    """A camera as `states()` reports it: connection status, counters and the threshold its
    verdicts use (from `class_name`, an override, or the model's global one)."""

    name: str
    status: str
    fps: float
    frames: int
    ok: int
    ng: int
    errors: int
    dropped: int
    reconnects: int
    source: str
    class_name: str | None = None
    threshold: float | None = None
    unscored: int = 0
    lost: int = 0


@dataclass
class StationSummary:
    """What a finished run did; `failed_cameras` are live sources that gave up."""

    elapsed_s: float
    cameras: dict[str, CameraStats]
    states: dict[str, CameraState]
    ended_by: str
    sinks: dict[str, int]
    failed_cameras: list[str]
    thresholds: str = ""  # where the thresholds in use came from (`describe_provenance`)
    api: CameraStats | None = None  # API requests ("api"), when the station took them

    @property
    def _all(self) -> list[CameraStats]:
        return [*self.cameras.values(), *([self.api] if self.api is not None else [])]

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self._all)

    @property
    def ok(self) -> int:
        return sum(s.ok for s in self._all)

    @property
    def ng(self) -> int:
        return sum(s.ng for s in self._all)

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self._all)

    @property
    def unscored(self) -> int:
        return sum(s.unscored for s in self._all)
