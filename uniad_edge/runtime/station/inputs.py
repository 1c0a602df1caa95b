"""The station's inputs: cameras and API requests behind one protocol, so the scoring loop has
one path for both.

An `Input` hands the loop `Work` (one frame each: the image to score, or why there is none,
with the camera's threshold, class and save policy) and keeps the counters of what it gave:
`stats` (the camera's `VerdictCounts` and latencies) and whether its first ERROR was warned. A
camera (`CameraInput`) gives at most one frame per batch (live cameras their newest one; when
triggered, only frames captured after the trigger); the API queue (`requests.Requests`) gives
waiting requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ...errors import UniadError
from ...metadata import Thresholds, describe_provenance
from ...redact import redact_url
from ..capture import Frame, FrameStream, Reader, make_reader
from ..detector import Detection
from ..record import VerdictCounts, VerdictRecord
from ..recorder import evidence_stem
from ..sinks import Verdict
from ..verdict import ERROR
from .config import CameraConfig, StationConfig
from .stats import CameraState, CameraStats

log = logging.getLogger(__name__)


class Input(Protocol):
    """What the scoring loop needs of an input besides its `Work`: its counters."""

    stats: CameraStats
    warned_error: bool

    def counts_now(self) -> VerdictCounts:
        """The input's counters now (a camera's with its dropped and lost frames)."""
        ...


@dataclass
class Trigger:
    """A request for the verdict of a camera's next frame (captured after `wall`)."""

    wall: float
    started: float
    part_id: str | None
    future: Future[VerdictRecord]


@dataclass
class Work:
    """One frame of a batch: a camera's (with its trigger, if any) or an API request's."""

    camera: str
    frame: Frame
    image: np.ndarray | None
    problem: str | None
    threshold: float | None
    class_name: str | None
    source: str
    save: str
    owner: Input
    part_id: str | None = None
    trigger: Trigger | None = None
    future: Future[Verdict] | None = None  # an API request's: its verdict once every sink ran


class CameraInput:
    """One configured camera: its stream, threshold, pending triggers, newest frame and
    verdict, and counters."""

    def __init__(self, config: CameraConfig, threshold: float | None) -> None:
        self.config = config
        self.name = config.name
        self.threshold = threshold
        self.stream: FrameStream | None = None
        self.stats = CameraStats()
        self.triggers: deque[Trigger] = deque()
        self.latest_frame: Frame | None = None
        self.latest_verdict: Verdict | None = None
        self.warned_error = False
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        if self.stream is not None:
            return self.stream.description
        source = self.config.source
        return source.description if isinstance(source, Reader) else redact_url(str(source))

    def counts_now(self) -> VerdictCounts:
        """The camera's counters now, with its stream's dropped and lost frames."""
        counts = self.stats.counts.snapshot()
        if self.stream is not None:
            counts.dropped, counts.lost = self.stream.dropped, self.stream.lost
        return counts

    def add_trigger(self, part_id: str | None) -> Future[VerdictRecord]:
        """Ask for the verdict of the next frame (captured after now, for a live camera)."""
        future: Future[VerdictRecord] = Future()
        if self.stream is not None and self.stream.finished:
            future.set_exception(UniadError(f"camera {self.name} has ended; no frame to score"))
            return future
        with self._lock:
            self.triggers.append(Trigger(time.time(), time.perf_counter(), part_id, future))
        if self.stream is not None:
            self.stream.reader.fire()  # a camera in trigger mode takes this part's frame
        return future

    def take(self, trigger_only: bool) -> Work | None:
        """The frame to score now, or None: no frame ready, or (triggered) none asked for."""
        stream = self.stream
        assert stream is not None
        pending = bool(self.triggers)
        if trigger_only and not pending:
            if stream.live:  # keep the preview fresh; nothing is scored
                frame = stream.get(timeout=0)
                if frame is not None:
                    self.latest_frame = frame
            return None
        frame = stream.get(timeout=0)
        if frame is None:
            if pending and stream.finished:
                self.fail_triggers("camera ended before a frame came")
            return None
        self.latest_frame = frame
        trigger = None
        with self._lock:
            if self.triggers and not (stream.live and frame.timestamp < self.triggers[0].wall):
                trigger = self.triggers.popleft()
        if trigger is None and trigger_only:
            return None  # a live frame captured before the trigger: too old for this part
        if trigger is None and frame.triggered is not None:  # the camera's own trigger
            trigger = Trigger(frame.timestamp, frame.triggered, None, Future())
        image, problem = self.prepare(frame)
        return Work(
            self.name,
            frame,
            image,
            problem,
            self.threshold,
            self.config.class_name,
            self.description,
            self.config.save,
            owner=self,
            part_id=trigger.part_id if trigger is not None else None,
            trigger=trigger,
        )

    def prepare(self, frame: Frame) -> tuple[np.ndarray | None, str | None]:
        """The image to score (ROI-cropped), or the reason there is none."""
        if frame.image is None:
            return None, frame.error or "no image"
        roi = self.config.roi
        if roi is None:
            return frame.image, None
        x, y, w, h = roi
        height, width = frame.image.shape[:2]
        if x + w > width or y + h > height:
            return None, (
                f"camera {self.name}: roi [{x}, {y}, {w}, {h}] does not fit the "
                f"{width}x{height} frame"
            )
        return frame.image[y : y + h, x : x + w], None

    def fail_triggers(self, reason: str) -> None:
        with self._lock:
            pending, self.triggers = list(self.triggers), deque()
        for trigger in pending:
            if not trigger.future.done():
                trigger.future.set_exception(UniadError(f"camera {self.name}: {reason}"))


def warn_first_error(owner: Input, camera: str, reason: str) -> None:
    """The first ERROR verdict of an input is a warning; later ones are counted only."""
    if not owner.warned_error:
        owner.warned_error = True
        log.warning(
            "camera %s: ERROR verdict (%s); such frames are never OK, and are counted in "
            "the summary and /metrics without a warning each",
            camera,
            reason,
        )


def settle(work: Work, record: VerdictRecord, detection: Detection | None) -> Verdict:
    """The outcome of `work` back to the input that gave it: counted once (its first ERROR
    warned), a camera's newest verdict, its trigger answered; the `Verdict` the sinks get,
    with the input's counts just after it."""
    owner, trigger, frame = work.owner, work.trigger, work.frame
    if trigger is not None:
        log.info(
            "trigger %s part %s: %s in %.1f ms",
            work.camera,
            trigger.part_id,
            record.verdict or record.error,
            record.trigger_ms,
        )
    if record.kind == ERROR:
        warn_first_error(owner, work.camera, str(record.error))
    owner.stats.add(record)
    verdict = Verdict(
        work.camera,
        record,
        frame,
        work.image,
        detection,
        work.save,
        evidence_stem=evidence_stem(work.camera, frame.timestamp, frame.index),
        counts=owner.counts_now(),
    )
    if isinstance(owner, CameraInput):
        owner.latest_verdict = verdict
    if trigger is not None:
        trigger.future.set_result(record)
    return verdict


class Cameras(dict[str, CameraInput]):
    """The station's cameras by name, in configuration order: opening their streams, taking
    one frame of each per batch (in turns), their states and counters, and when they are done."""

    _turn = 0

    def get(self, name: str) -> CameraInput:
        try:
            return self[name]
        except KeyError:
            raise UniadError(
                f"no camera named {name!r}; this station has: {', '.join(self)}"
            ) from None

    def open(self, config: StationConfig, wake: Callable[[], None]) -> None:
        """Open every camera in the caller's thread: a file that cannot be read is an error
        now; a live camera that is not up yet is "reconnecting" under the reconnect policy."""
        reconnect: dict[str, Any] = {  # the same retry policy for every source kind
            "max_reconnects": config.reconnect_tries,
            "backoff_s": config.reconnect_wait,
            "max_backoff_s": config.reconnect_max_wait,
            "on_change": wake,
        }
        try:
            for camera in self.values():
                source = camera.config.source
                reader = (
                    source if isinstance(source, Reader) else make_reader(source, config.bit_depth)
                )
                if config.trigger_only:
                    reader.use_station_trigger()
                camera.stream = FrameStream(reader, **reconnect).start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for camera in self.values():
            if camera.stream is not None:
                camera.stream.stop()

    def join(self, timeout: float = 5) -> None:
        for camera in self.values():
            if camera.stream is not None:
                camera.stream.join(timeout=timeout)

    def take(self, room: int, trigger_only: bool) -> list[Work]:
        """At most one frame per camera that has one ready (and, when triggered, a trigger),
        up to `room`, starting with the next camera in turn so none waits behind another."""
        order = list(self.values())
        order = order[self._turn :] + order[: self._turn]
        self._turn = (self._turn + 1) % max(1, len(order))
        batch: list[Work] = []
        for camera in order:
            if len(batch) >= room:
                break
            work = camera.take(trigger_only)
            if work is not None:
                batch.append(work)
        return batch

    @property
    def frames(self) -> int:
        return sum(camera.stats.frames for camera in self.values())

    def done(self, stopping: bool, trigger_only: bool) -> bool:
        """Free-running: every stream ended and drained. Triggered after stop(): no trigger
        can still be served."""
        streams = [c.stream for c in self.values()]
        if all(s is not None and s.finished for s in streams):
            return True
        if stopping and trigger_only and not any(c.triggers for c in self.values()):
            return all(s is not None and s.done for s in streams)
        return False

    def fail_triggers(self, reason: str) -> None:
        for camera in self.values():
            camera.fail_triggers(reason)

    def state(self, name: str) -> CameraState:
        target = self.get(name)
        stream, stats = target.stream, target.stats
        return CameraState(
            name=target.name,
            status=stream.state if stream is not None else "not started",
            fps=stats.fps,
            frames=stats.frames,
            ok=stats.ok,
            ng=stats.ng,
            errors=stats.errors,
            unscored=stats.unscored,
            lost=stream.lost if stream is not None else 0,
            dropped=stream.dropped if stream is not None else 0,
            reconnects=stream.reconnects if stream is not None else 0,
            source=target.description,
            class_name=target.config.class_name,
            threshold=target.threshold,
        )

    def provenance(self, thresholds: Thresholds) -> str:
        """Where the cameras' thresholds come from: the model's (held out at training, or
        calibrated on N images on date D), or, camera by camera, one given explicitly."""
        given = {
            c.name: c.config.threshold for c in self.values() if c.config.threshold is not None
        }
        if len(self) == 1 or not given:
            return describe_provenance(thresholds, next(iter(given.values()), None))
        lines = [f"{name}: {describe_provenance(thresholds, v)}" for name, v in given.items()]
        if len(given) < len(self):
            lines.append(f"other cameras: {describe_provenance(thresholds)}")
        return "; ".join(lines)

    def states(self) -> dict[str, CameraState]:
        return {name: self.state(name) for name in self}

    def counts(self) -> dict[str, VerdictCounts]:
        """Every camera's counters, with its dropped and lost frames."""
        return {name: camera.counts_now() for name, camera in self.items()}
