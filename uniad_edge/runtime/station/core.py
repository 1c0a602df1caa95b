"""The inspection station: several named cameras, one backend, batched scoring, result sinks.

Torch-free like the rest of the runtime. `uniad-edge run`, the demo, `benchmarks/soak.py` and
`uniad-edge serve` all drive this class; the CLI only turns options into a `StationConfig`.

API (embeddable)::

    config = StationConfig(
        cameras=[CameraConfig("top", "rtsp://cam1/stream", class_name="bottle"),
                 CameraConfig("side", 0, threshold=0.8, roi=(0, 40, 640, 400), save="all")],
        model=Path("export/model.onnx"), log=Path("runs/line.jsonl"), save_dir=Path("runs/ng"),
        mqtt="mqtt://127.0.0.1:1883/line1", trigger_only=False)
    station = Station(config)           # loads the model, resolves thresholds, opens the sinks
    station.start()                     # capture threads + scoring thread in the background
    record = station.trigger("top", part_id="P-17", timeout=5)   # next frame's verdict (dict)
    frame, verdict = station.latest("top")    # newest captured Frame, newest Verdict (or None)
    station.states()                    # {"top": CameraState(status="connected", fps=..., ...)}
    unsubscribe = station.subscribe(lambda verdict: ...)   # every Verdict, on the output thread
    station.stop(); summary = station.wait()               # or: summary = station.run() (blocking)
    station.close()                     # stops, joins, closes sinks and the detector

- Free-running (default): every camera's frames are scored as they come. Frames of all cameras
  that have one ready are scored together in one batch on one `Detector`; live cameras keep only
  their newest frame, so a slow camera never delays a fast one.
- Triggered (`trigger_only=True`): a camera is scored only when triggered (`trigger()`, the
  stdin/MQTT trigger sources in `triggers.py`, or an HTTP call in `serve`); a live camera's
  frame must be captured after the trigger. A trigger's `part_id` and trigger-to-verdict
  latency (`trigger_ms`) go into the record. In free-running mode a trigger tags the camera's
  next scored frame.
- API requests (`StationConfig.api_queue > 0`, `score_async`; serve's `POST /v1/score`) are a
  camera-less input, camera "api": waiting requests fill each batch beside the camera frames
  (at least one per batch while any waits), and their verdicts go through the same sinks. A
  station with an API input may have no camera and runs until `stop()`.
- The verdict is applied once, here, where the camera (or request) is known: each frame goes
  to `Detector.predict` with its own threshold (`Thresholds.resolve`), and its `Detection` is
  immutable from then on.
- Records (`record.VerdictRecord`, frozen, built once per frame; one schema for cameras and
  API requests) carry station, camera, unique frame name, class name, part id, score,
  normalised score, threshold, verdict, `is_ok`, model id and latencies. `verdict` is "ERROR"
  (with `error`, the reason, and never OK) for a frame that could not be prepared, a backend
  error, or a non-finite map or score; warned once per camera. Each record is counted once, in
  its camera's `VerdictCounts`, which every consumer reads.
  Sinks (`sinks/`, one module each, one `SINKS` entry, built from a `SinkContext`, plus an
  embedder's own `sinks=`) get a `Verdict` (record + counts + frame + scored image + detection
  + the evidence name, `recorder.evidence_stem`, decided here once) on one output thread, in
  order; the evidence sink names the files it saved in `Verdict.evidence`.
- The model lives in the slot (`slot.py`): opened, swapped and closed there.
- Camera states: "connected", "reconnecting" (also a live camera that is down at start-up),
  "failed" (a live source gave up after `reconnect_tries`), "ended".
  `StationSummary.failed_cameras` lets the CLI exit non-zero.
- Configuration dataclasses live in `config.py`, counters and the summary in `stats.py` (both
  re-exported here), the API request queue in `requests.py`, the summary table in `report.py`.
- `stop()` is "finish what is captured, then end" (free-running frames already buffered and
  pending triggers that can still be served are scored); `stop_on_signals()` maps the first
  Ctrl-C/SIGTERM to it.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from ...artifacts import threshold_warnings
from ...errors import UniadError
from ...metadata import describe_provenance
from ...redact import redact_url
from ..backends.base import Closeable
from ..capture import Frame, FrameStream, Reader, make_reader
from ..detector import ERROR, Detection, Detector
from ..record import VerdictCounts, VerdictRecord
from ..recorder import evidence_stem
from ..sinks import SINKS, Sink, SinkContext, Verdict
from ..sinks.callback import CallbackSink
from .config import SAVE_POLICIES, CameraConfig, StationConfig
from .requests import API_CAMERA, API_SOURCE, Request, Requests
from .slot import Loader, ModelSlot, PreparedModel, open_checked
from .stats import CameraState, CameraStats, StationSummary
from .swap import WATCH_INTERVAL_S, ModelWatcher, changed_record, reload_on_sighup
from .triggers import TRIGGERS, trigger_kind

log = logging.getLogger(__name__)
__all__ = [
    "SAVE_POLICIES",
    "CameraConfig",
    "CameraState",
    "CameraStats",
    "Station",
    "StationConfig",
    "StationSummary",
    "Verdict",
]

OUTPUT_QUEUE = 64
_END = object()


@dataclass
class _Event:
    """A record for the log that is not a verdict (`model_changed`)."""

    record: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.record.get("event"))


@dataclass
class _Trigger:
    wall: float
    started: float
    part_id: str | None
    future: Future[VerdictRecord]


@dataclass
class _Work:
    """One frame of a batch: a camera's (with its trigger, if any) or an API request's."""

    camera: str
    frame: Frame
    image: np.ndarray | None
    problem: str | None
    threshold: float | None
    class_name: str | None
    source: str
    save: str
    part_id: str | None = None
    owner: _Camera | None = None
    trigger: _Trigger | None = None
    request: Request | None = None


class _Camera:
    """Runtime state of one configured camera (its stream, threshold, triggers, latest)."""

    def __init__(self, config: CameraConfig, threshold: float | None) -> None:
        self.config = config
        self.name = config.name
        self.threshold = threshold
        self.stream: FrameStream | None = None
        self.stats = CameraStats()
        self.triggers: deque[_Trigger] = deque()
        self.latest_frame: Frame | None = None
        self.latest_verdict: Verdict | None = None
        self.warned_error = False

    @property
    def description(self) -> str:
        if self.stream is not None:
            return self.stream.description
        source = self.config.source
        return source.description if isinstance(source, Reader) else redact_url(str(source))


class Station(Closeable):
    """Sources -> batched scoring on one detector -> records -> sinks (see the module docstring)."""

    def __init__(
        self,
        config: StationConfig,
        detector: Detector | None = None,
        *,
        sinks: Sequence[Sink] = (),
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """`sinks`: an embedder's own sinks (serve's metrics, event hub, gallery), run after
        the `SINKS` table's; `on_batch(size)` is called after every backend batch."""
        self.config = config
        self.slot = ModelSlot.for_station(config, detector)  # `detector` given: borrowed
        self.sinks: list[Sink] = []
        self.on_batch = on_batch
        try:
            self.cameras = {
                c.name: _Camera(c, self.detector.threshold_for(c.class_name, c.threshold))
                for c in config.cameras
            }
            context = self.sink_context()
            for make in SINKS.values():
                sink = make(context)
                if sink is not None:
                    self.sinks.append(sink)
            self.sinks += sinks
        except BaseException:
            self._close_sinks_and_detector()
            raise
        self.callbacks = next(s for s in self.sinks if isinstance(s, CallbackSink))
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.requests = Requests(config.api_queue, self._wake.set) if config.api_queue else None
        self._stopping = threading.Event()
        self._ended_by: str | None = None
        self._outputs: queue.Queue[tuple[Verdict, Request | None] | object]
        self._outputs = queue.Queue(maxsize=OUTPUT_QUEUE)
        self._output_thread = threading.Thread(
            target=self._output_loop, name="uniad-station-out", daemon=True
        )
        self._score_thread: threading.Thread | None = None
        self._started_at: float | None = None
        self._finished = threading.Event()
        self._error: BaseException | None = None
        self._summary: StationSummary | None = None
        self._closed = False
        self.trigger_sources: list[Closeable] = []  # stdin/MQTT trigger readers, once started

    @property
    def detector(self) -> Detector:
        """The model scoring now (held by `slot`)."""
        return self.slot.detector

    @property
    def model_id(self) -> str:
        return self.slot.model_id

    @property
    def threshold_provenance(self) -> str:
        """Where the cameras' thresholds come from: the model's (held out at training, or
        calibrated on N images on date D), or, camera by camera, one given explicitly."""
        thresholds = self.detector.metadata.thresholds
        given = {
            name: c.config.threshold
            for name, c in self.cameras.items()
            if c.config.threshold is not None
        }
        if len(self.cameras) == 1 or not given:
            return describe_provenance(thresholds, next(iter(given.values()), None))
        lines = [f"{name}: {describe_provenance(thresholds, v)}" for name, v in given.items()]
        if len(given) < len(self.cameras):
            lines.append(f"other cameras: {describe_provenance(thresholds)}")
        return "; ".join(lines)

    def sink_context(self) -> SinkContext:
        """What the sinks may know of this station (see `sinks.SinkContext`)."""
        return SinkContext(
            config=self.config,
            cameras=tuple(self.cameras),
            counters=lambda: {name: dataclasses.asdict(s) for name, s in self.states().items()},
            model_id=lambda: self.model_id,
            threshold_provenance=lambda: self.threshold_provenance,
            subscribe=self.subscribe,
            trigger=self.trigger_async,
            stop=self.stop,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def _open_streams(self) -> None:
        """Open every camera in the caller's thread: a file that cannot be read is an error now;
        a live camera that is not up yet is "reconnecting" under the reconnect policy."""
        config, bit_depth = self.config, self.config.bit_depth
        try:
            reconnect: dict[str, Any] = {  # the same retry policy for every source kind
                "max_reconnects": config.reconnect_tries,
                "backoff_s": config.reconnect_wait,
                "max_backoff_s": config.reconnect_max_wait,
                "on_change": self._wake.set,
            }
            for camera in self.cameras.values():
                source = camera.config.source
                reader = source if isinstance(source, Reader) else make_reader(source, bit_depth)
                if config.trigger_only:
                    reader.use_station_trigger()
                camera.stream = FrameStream(reader, **reconnect).start()
        except BaseException:
            for camera in self.cameras.values():
                if camera.stream is not None:
                    camera.stream.stop()
            raise

    def _begin(self) -> None:
        if self._started_at is not None:
            raise UniadError("a station can be started once; make a new Station to run again")
        for problem in threshold_warnings(self.detector.metadata.thresholds):
            log.warning("threshold %s (re-run `uniad-edge calibrate`)", problem)
        self._open_streams()
        try:
            if self.config.trigger is not None:
                self.trigger_sources.append(
                    TRIGGERS[trigger_kind(self.config.trigger)](self, self.config.trigger)
                )
        except BaseException:
            for camera in self.cameras.values():
                if camera.stream is not None:
                    camera.stream.stop()
            raise
        self._started_at = time.perf_counter()
        self._output_thread.start()

    def start(self) -> Station:
        """Open the cameras and score in a background thread; returns at once."""
        self._begin()
        self._score_thread = threading.Thread(
            target=self._score_loop, name="uniad-station-score", daemon=True
        )
        self._score_thread.start()
        return self

    def run(self) -> StationSummary:
        """Open the cameras and score in this thread until the sources end or `stop()`."""
        self._begin()
        self._score_loop()
        return self._result()

    def stop(self, reason: str = "stop()") -> None:
        """Stop capturing; frames already captured and serviceable triggers are still scored."""
        if not self._stopping.is_set():
            self._ended_by = self._ended_by or reason
            self._stopping.set()
        if self.requests is not None:
            self.requests.close()
        for camera in self.cameras.values():
            if camera.stream is not None:
                camera.stream.stop()
        self._wake.set()

    def wait(self, timeout: float | None = None) -> StationSummary | None:
        """Wait for a started station to end; its summary, or None on timeout."""
        if not self._finished.wait(timeout):
            return None
        return self._result()

    def _result(self) -> StationSummary:
        self._finished.wait()
        if self._error is not None:
            raise self._error
        assert self._summary is not None
        return self._summary

    def close(self) -> None:
        """Stop, wait for the loop and the sinks, close sinks and (if it loaded it) the model."""
        if self._closed:
            return
        self._closed = True
        self.stop("close()")
        if self._score_thread is not None:
            self._score_thread.join()
        if self._started_at is None:
            self._close_sinks_and_detector()

    @property
    def summary(self) -> StationSummary | None:
        return self._summary

    # -- the embeddable API ----------------------------------------------------------------

    def trigger_async(self, camera: str, part_id: str | None = None) -> Future[VerdictRecord]:
        """Ask for a verdict of `camera`'s next frame; the future gets its record."""
        target = self._camera(camera)
        future: Future[VerdictRecord] = Future()
        if self._finished.is_set() or (target.stream is not None and target.stream.finished):
            future.set_exception(UniadError(f"camera {camera} has ended; no frame to score"))
            return future
        with self._lock:
            target.triggers.append(_Trigger(time.time(), time.perf_counter(), part_id, future))
        if target.stream is not None:
            target.stream.reader.fire()  # a camera in trigger mode takes this part's frame
        self._wake.set()
        return future

    def trigger(
        self, camera: str, part_id: str | None = None, timeout: float | None = None
    ) -> VerdictRecord:
        """Score `camera`'s next frame (captured after this call for a live camera) and
        return its record, with `part_id` and `trigger_ms` in it."""
        return self.trigger_async(camera, part_id).result(timeout)

    def latest(self, camera: str) -> tuple[Frame | None, Verdict | None]:
        """The newest captured frame (scored or not) and the newest verdict of `camera`."""
        target = self._camera(camera)
        return target.latest_frame, target.latest_verdict

    def state(self, camera: str) -> CameraState:
        target = self._camera(camera)
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

    @staticmethod
    def _camera_counts(camera: _Camera) -> VerdictCounts:
        """A camera's counters now, with its stream's dropped and lost frames."""
        counts = camera.stats.counts.snapshot()
        if camera.stream is not None:
            counts.dropped, counts.lost = camera.stream.dropped, camera.stream.lost
        return counts

    def states(self) -> dict[str, CameraState]:
        return {name: self.state(name) for name in self.cameras}

    def counts(self) -> dict[str, VerdictCounts]:
        """Every camera's counters (and the API's, as "api"), with its dropped and lost frames:
        the one set of numbers `/metrics`, the event stream, OPC UA and the summary read."""
        out = {name: self._camera_counts(camera) for name, camera in self.cameras.items()}
        if self.requests is not None:
            out[API_CAMERA] = self.requests.stats.counts.snapshot()
        return out

    def subscribe(self, callback: Callable[[Verdict], None]) -> Callable[[], None]:
        """Call `callback(verdict)` for every verdict (on the output thread; keep it quick).
        Returns the function that unsubscribes."""
        return self.callbacks.subscribe(callback)

    def api_threshold(self, class_name: str | None = None) -> float | None:
        """The threshold an API request uses: the model's for `class_name` when given (an
        unknown class is refused), else the API's default class or override
        (`StationConfig.api_class_name`, `api_threshold`)."""
        if class_name is None:
            config = self.config
            return self.detector.threshold_for(config.api_class_name, config.api_threshold)
        return self.detector.threshold_for(class_name, None)

    def score_async(
        self,
        image: np.ndarray,
        *,
        class_name: str | None = None,
        part_id: str | None = None,
        name: str | None = None,
    ) -> Future[Verdict]:
        """Score one BGR image as camera "api", in the station's next batch; the future gets
        its `Verdict` once every sink has run (the log line is written). Needs
        `StationConfig.api_queue`; `QueueFull` when that many requests wait already."""
        if self.requests is None:
            raise UniadError("this station takes no API requests (StationConfig.api_queue is 0)")
        threshold = self.api_threshold(class_name)
        return self.requests.submit(
            image, threshold, class_name=class_name, part_id=part_id, name=name
        )

    def status_line(self) -> str:
        """One line for a live terminal display: per camera fps and OK/NG counts."""
        parts = []
        for name in self.cameras:
            state = self.state(name)
            parts.append(
                f"{name}: {state.status} {state.fps:5.1f} fps OK {state.ok} NG {state.ng}"
                + (f" err {state.errors}" if state.errors else "")
            )
        total = sum(c.stats.frames for c in self.cameras.values())
        return f"frames {total}  " + "  |  ".join(parts)

    def _camera(self, name: str) -> _Camera:
        try:
            return self.cameras[name]
        except KeyError:
            raise UniadError(
                f"no camera named {name!r}; this station has: {', '.join(self.cameras)}"
            ) from None

    @contextmanager
    def stop_on_signals(self) -> Iterator[None]:
        """First Ctrl-C/SIGTERM asks the station to drain and stop; a second Ctrl-C aborts.
        Only in the main thread (Python delivers signals there)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous: dict[int, Any] = {}

        def handle(signum: int, _frame: FrameType | None) -> None:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.stop(signal.Signals(signum).name)

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handle)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def swap_model(self, path: str | Path, detector: Detector | None = None) -> Future[str]:
        """Load `path` in the background and swap it in between two batches (see `swap.py`);
        the future gets the new model id, or the one-line reason the old model stays. A caller
        that opened the model itself passes it as `detector` and keeps owning it (the slot's
        rule: borrowed)."""
        return self.slot.request(path, self._prepare_model, self._swap_ready, detector)

    def watch_model(
        self, path: str | Path | None = None, interval_s: float = WATCH_INTERVAL_S
    ) -> ModelWatcher:
        """Swap in `path` (default: the station's model file) whenever it is replaced, until
        the returned watcher is closed."""
        target = path if path is not None else self.config.model
        if target is None or "://" in str(target):
            raise UniadError("--watch-model needs a model file (not a Triton URL)")
        return ModelWatcher(target, self.swap_model, interval_s)

    def reload_on_sighup(self) -> AbstractContextManager[None]:
        """SIGHUP swaps in the station's model file again (e.g. after `calibrate`)."""
        model = self.config.model
        return reload_on_sighup(lambda: self.swap_model(model) if model is not None else None)

    def _prepare_model(self, path: str, opener: Loader, owned: bool) -> PreparedModel:
        reference = None
        for camera in self.cameras.values():
            if camera.latest_frame is not None:
                reference, _ = self._prepare(camera, camera.latest_frame)
                if reference is not None:
                    break
        configs = {name: c.config for name, c in self.cameras.items()}
        return open_checked(path, opener, self.detector, configs, reference, owned)

    def _swap_ready(self) -> None:
        """A checked model waits: the scoring thread takes it between batches; a station that
        is not scoring (not started, or ended) takes it now."""
        with self._lock:
            scoring = self._started_at is not None and not self._finished.is_set()
        if scoring:
            self._wake.set()
        elif self._finished.is_set():
            self.slot.cancel("the station has ended")
        else:
            self._apply_swap()

    def _apply_swap(self) -> None:
        prepared = self.slot.take()
        if prepared is None:
            return
        for name, camera in self.cameras.items():
            camera.threshold = prepared.thresholds[name]
        self._put_output(_Event(changed_record(self.config.name, self.model_id, prepared)))
        self.slot.install(prepared)

    # -- scoring ---------------------------------------------------------------------------

    def _score_loop(self) -> None:
        try:
            order = list(self.cameras.values())
            turn = 0
            while True:
                self._wake.clear()
                self._apply_swap()
                batch = self._collect(order[turn:] + order[:turn])
                turn = (turn + 1) % max(1, len(order))
                if batch:
                    self._score(batch)
                    self._check_max_frames()
                    continue
                if self._all_done():
                    break
                self._wake.wait(0.05)
        except BaseException as exc:
            self._error = exc
            self.stop("error")
        finally:
            self._finish()

    def _collect(self, cameras: list[_Camera]) -> list[_Work]:
        """At most one frame per camera that has one ready (and, when triggered, a trigger),
        then waiting API requests up to the batch size (at least one when any waits)."""
        batch: list[_Work] = []
        api_waiting = self.requests is not None and self.requests.depth > 0
        room = min(self.config.max_batch - int(api_waiting), self._frames_left())
        for camera in cameras:
            stream = camera.stream
            assert stream is not None
            if len(batch) >= room:
                break
            pending = bool(camera.triggers)
            if self.config.trigger_only and not pending:
                if stream.live:  # keep the preview fresh; nothing is scored
                    frame = stream.get(timeout=0)
                    if frame is not None:
                        camera.latest_frame = frame
                continue
            frame = stream.get(timeout=0)
            if frame is None:
                if pending and stream.finished:
                    self._fail_triggers(camera, "camera ended before a frame came")
                continue
            camera.latest_frame = frame
            trigger = None
            with self._lock:
                if camera.triggers and not (
                    stream.live and frame.timestamp < camera.triggers[0].wall
                ):
                    trigger = camera.triggers.popleft()
            if trigger is None and self.config.trigger_only:
                continue  # a live frame captured before the trigger: too old for this part
            if trigger is None and frame.triggered is not None:  # the camera's own trigger
                trigger = _Trigger(frame.timestamp, frame.triggered, None, Future())
            image, problem = self._prepare(camera, frame)
            batch.append(
                _Work(
                    camera.name,
                    frame,
                    image,
                    problem,
                    camera.threshold,
                    camera.config.class_name,
                    camera.description,
                    camera.config.save,
                    part_id=trigger.part_id if trigger is not None else None,
                    owner=camera,
                    trigger=trigger,
                )
            )
        if self.requests is not None:
            for request in self.requests.take(self.config.max_batch - len(batch)):
                frame = request.frame
                batch.append(
                    _Work(
                        API_CAMERA,
                        frame,
                        frame.image,
                        None,
                        request.threshold,
                        request.class_name,
                        API_SOURCE,
                        "ng",
                        part_id=request.part_id,
                        request=request,
                    )
                )
        return batch

    def _score(self, batch: list[_Work]) -> None:
        """One backend batch, then one record and one `Verdict` per frame, to the sinks."""
        problems = [work.problem for work in batch]
        jobs = {
            i: (work.image, work.threshold)
            for i, work in enumerate(batch)
            if work.image is not None and work.problem is None
        }
        detections = self._predict(jobs, problems)
        if self.on_batch is not None and jobs:
            self.on_batch(len(jobs))
        done = time.perf_counter()
        for i, work in enumerate(batch):
            frame, trigger = work.frame, work.trigger
            detection = detections.get(i)
            if detection is None and problems[i] is not None:
                frame.error = problems[i]
            now = time.perf_counter()
            record = VerdictRecord.of(
                frame,
                detection,
                work.source,
                camera=work.camera,
                station=self.config.name,
                model=self.model_id,
                class_name=work.class_name,
                part_id=work.part_id,
                postprocess_ms=(now - done) * 1e3,
                trigger_ms=None if trigger is None else (now - trigger.started) * 1e3,
            )
            if trigger is not None:
                log.info(
                    "trigger %s part %s: %s in %.1f ms",
                    work.camera,
                    trigger.part_id,
                    record.verdict or record.error,
                    record.trigger_ms,
                )
            counts = work.owner if work.owner is not None else self.requests
            assert counts is not None
            if record.kind == ERROR:
                self._warn_error(counts, work.camera, str(record.error))
            counts.stats.add(record)
            verdict = Verdict(
                work.camera,
                record,
                frame,
                work.image,
                detection,
                work.save,
                evidence_stem=evidence_stem(work.camera, frame.timestamp, frame.index),
                counts=self._camera_counts(work.owner)
                if work.owner is not None
                else counts.stats.counts.snapshot(),
            )
            if work.owner is not None:
                work.owner.latest_verdict = verdict
            if trigger is not None:
                trigger.future.set_result(record)
            self._put_output((verdict, work.request))

    def _warn_error(self, counts: _Camera | Requests, camera: str, reason: str) -> None:
        """The first ERROR verdict of a camera is a warning; later ones are counted only."""
        if not counts.warned_error:
            counts.warned_error = True
            log.warning(
                "camera %s: ERROR verdict (%s); such frames are never OK, and are counted in "
                "the summary and /metrics without a warning each",
                camera,
                reason,
            )

    def _prepare(self, camera: _Camera, frame: Frame) -> tuple[np.ndarray | None, str | None]:
        """The image to score (ROI-cropped), or the reason there is none."""
        if frame.image is None:
            return None, frame.error or "no image"
        roi = camera.config.roi
        if roi is None:
            return frame.image, None
        x, y, w, h = roi
        height, width = frame.image.shape[:2]
        if x + w > width or y + h > height:
            return None, (
                f"camera {camera.name}: roi [{x}, {y}, {w}, {h}] does not fit the "
                f"{width}x{height} frame"
            )
        return frame.image[y : y + h, x : x + w], None

    def _predict(
        self, jobs: dict[int, tuple[np.ndarray, float | None]], problems: list[str | None]
    ) -> dict[int, Detection]:
        """One batch, each frame judged against its camera's threshold. If the batch fails (a
        16-bit frame without bit depth, a backend error), the frames are scored one by one so
        only the failing ones get ERROR records, with the reason in `problems`."""
        if not jobs:
            return {}
        index = list(jobs)
        images = [jobs[i][0] for i in index]
        thresholds = [jobs[i][1] for i in index]
        try:
            return dict(zip(index, self.detector.predict(images, thresholds), strict=True))
        except Exception:  # noqa: BLE001 (retried one by one below, where the reason is kept)
            pass
        results: dict[int, Detection] = {}
        for i in index:
            try:
                results[i] = self.detector.predict([jobs[i][0]], [jobs[i][1]])[0]
            except UniadError as exc:
                problems[i] = str(exc)
            except Exception as exc:  # a backend error is an ERROR verdict, never OK
                problems[i] = f"backend error: {type(exc).__name__}: {exc}"
        return results

    def _frames_left(self) -> int:
        limit = self.config.max_frames
        if limit is None:
            return self.config.max_batch
        return max(0, limit - sum(c.stats.frames for c in self.cameras.values()))

    def _check_max_frames(self) -> None:
        if self._frames_left() == 0:
            self.stop("max frames")

    def _all_done(self) -> bool:
        """Every camera is done and, when the station takes API requests, it was stopped and
        none is waiting."""
        if self.requests is not None and not (self._stopping.is_set() and not self.requests.depth):
            return False
        return self._cameras_done()

    def _cameras_done(self) -> bool:
        """Free-running: every stream ended and drained. Triggered after stop(): no trigger
        can still be served."""
        streams = [c.stream for c in self.cameras.values()]
        if self._frames_left() == 0 or all(s is not None and s.finished for s in streams):
            return True
        if self._stopping.is_set() and self.config.trigger_only:
            waiting = [c for c in self.cameras.values() if c.triggers]
            if not waiting:
                return all(s is not None and s.done for s in streams)
        return False

    def _fail_triggers(self, camera: _Camera, reason: str) -> None:
        with self._lock:
            pending, camera.triggers = list(camera.triggers), deque()
        for trigger in pending:
            if not trigger.future.done():
                trigger.future.set_exception(UniadError(f"camera {camera.name}: {reason}"))

    def _finish(self) -> None:
        self.slot.cancel("the station stopped before the new model could take over")
        for camera in self.cameras.values():
            if camera.stream is not None:
                camera.stream.stop()
            self._fail_triggers(camera, "the station stopped")
        if self.requests is not None:
            self.requests.close()
            self.requests.fail_waiting("the station stopped")
        for trigger_source in self.trigger_sources:
            trigger_source.close()
        self._put_output(_END, force=True)
        self._output_thread.join()
        for camera in self.cameras.values():
            if camera.stream is not None:
                camera.stream.join(timeout=5)
        elapsed = time.perf_counter() - (self._started_at or time.perf_counter())
        sink_counts: dict[str, int] = {}
        self._close_sinks_and_detector()
        for sink in self.sinks:
            sink_counts |= sink.summary()
        states = self.states()
        failed = [name for name, s in states.items() if s.status == "failed"]
        self._summary = StationSummary(
            elapsed_s=elapsed,
            cameras={name: c.stats for name, c in self.cameras.items()},
            states=states,
            ended_by=self._ended_by or ("source failed" if failed else "end of stream"),
            sinks=sink_counts,
            failed_cameras=failed,
            thresholds=self.threshold_provenance,
            api=self.requests.stats if self.requests is not None else None,
        )
        self._finished.set()

    def _close_sinks_and_detector(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                log.exception("closing the %s sink failed", sink.name)
        self.slot.close()

    # -- output thread ---------------------------------------------------------------------

    def _put_output(self, item: object, force: bool = False) -> None:
        while True:
            try:
                self._outputs.put(item, timeout=0.1)
                return
            except queue.Full:
                if not force and not self._output_thread.is_alive():
                    return

    def _output_loop(self) -> None:
        while True:
            item = self._outputs.get()
            if item is _END:
                return
            if isinstance(item, _Event):
                for sink in self.sinks:
                    try:
                        sink.event(item.record)
                    except Exception:
                        log.exception("the %s sink failed on a %s event", sink.name, item.kind)
                continue
            verdict, request = item  # type: ignore[misc]
            for sink in self.sinks:
                try:
                    sink.emit(verdict)
                except Exception:
                    log.exception(
                        "the %s sink failed on a verdict of %s", sink.name, verdict.camera
                    )
            if request is not None:  # an API answer once its log line and evidence are out
                request.future.set_result(verdict)
