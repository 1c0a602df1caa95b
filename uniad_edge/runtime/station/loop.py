"""The scoring loop: the station's one path from inputs to outputs, batch after batch. Each turn
brings in a waiting model or thresholds file (`swap.Updates`), collects camera frames and API
requests into one batch, scores it (`scorer.py`) and settles every frame with its input before
queueing it for the sinks (`outputs.py`); it ends when every input is done. The station keeps
the threads and the lifecycle around it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .config import StationConfig
from .inputs import Cameras, Work, settle
from .outputs import Outputs
from .requests import Requests
from .scorer import Scorer
from .swap import Updates


class ScoringLoop:
    """Inputs -> scorer -> outputs until the inputs are done (see the module docstring)."""

    def __init__(
        self,
        config: StationConfig,
        cameras: Cameras,
        requests: Requests | None,
        scorer: Scorer,
        outputs: Outputs,
        updates: Updates,
        *,
        stopping: threading.Event,
        wake: threading.Event,
        stop: Callable[[str], None],
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """`stopping` is set once the station was asked to stop, `wake` when an input has work;
        `stop(reason)` asks the station to stop; `on_batch(size)` runs after every backend
        batch."""
        self.config = config
        self.cameras = cameras
        self.requests = requests
        self.scorer = scorer
        self.outputs = outputs
        self.updates = updates
        self.stopping = stopping
        self.wake = wake
        self.stop = stop
        self.on_batch = on_batch

    def run(self) -> None:
        """Score until every input is done; an error propagates to the station."""
        while True:
            self.wake.clear()
            self.updates.apply()
            batch = self._collect()
            if batch:
                self._score(batch)
                if self._frames_left() == 0:
                    self.stop("max frames")
                continue
            if self._all_done():
                return
            self.wake.wait(0.05)

    def _collect(self) -> list[Work]:
        """Camera frames first (one per camera), then waiting API requests up to the batch
        size (at least one when any waits)."""
        api_waiting = self.requests is not None and self.requests.depth > 0
        room = min(self.config.max_batch - int(api_waiting), self._frames_left())
        batch = self.cameras.take(room, self.config.trigger_only)
        if self.requests is not None:
            batch += self.requests.take_work(self.config.max_batch - len(batch))
        return batch

    def _score(self, batch: list[Work]) -> None:
        """One backend batch, then each frame's outcome settled with its input (counted once,
        its trigger answered) and queued, with its counts, for the sinks."""
        scored, reached = self.scorer.score(batch)
        if self.on_batch is not None and reached:
            self.on_batch(reached)
        for work, (record, detection) in zip(batch, scored, strict=True):
            self.outputs.verdict(settle(work, record, detection), work.future)

    def _frames_left(self) -> int:
        limit = self.config.max_frames
        if limit is None:
            return self.config.max_batch
        return max(0, limit - self.cameras.frames)

    def _all_done(self) -> bool:
        """Every camera is done and, when the station takes API requests, it was stopped and
        none is waiting."""
        if self.requests is not None and not (self.stopping.is_set() and not self.requests.depth):
            return False
        if self._frames_left() == 0:
            return True
        return self.cameras.done(self.stopping.is_set(), self.config.trigger_only)
