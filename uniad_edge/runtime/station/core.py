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
- The verdict is applied once, in the scorer, where the camera (or request) is known: the
  detector only scores, and each frame's `Detection` is judged against its own threshold
  (`verdict.resolve_threshold`, `verdict.judge`); it is immutable from then on.
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
- The station coordinates four parts, each its own module, importing one way
  (config <- slot <- stats <- inputs <- requests <- scorer <- outputs <- swap <- loop <- core): the
  model slot (`slot.py`), the inputs (`inputs.py`: cameras; `requests.py`: API requests; one
  `Work` protocol), the scorer (`scorer.py`: batches in, records out, the one place a
  threshold is applied) and the outputs (`outputs.py`: one record to every sink); `swap.py`
  brings a new model or thresholds file in between batches, and `loop.py` turns batch after
  batch through them. Configuration lives in
  `config.py`, counters and the summary in `stats.py` (both re-exported here), the summary
  table in `report.py`.
- `stop()` is "finish what is captured, then end" (free-running frames already buffered and
  pending triggers that can still be served are scored); `cli/live.py` maps the first
  Ctrl-C/SIGTERM to it, SIGHUP to a model reload, and draws the status line.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from ...artifacts import threshold_warnings
from ...errors import UniadError
from ..backends.base import Closeable
from ..capture import Frame
from ..detector import Detector, threshold_for
from ..record import VerdictCounts, VerdictRecord
from ..sinks import Sink, SinkContext, Verdict
from .config import API_CAMERA, SAVE_POLICIES, CameraConfig, StationConfig
from .inputs import CameraInput, Cameras
from .loop import ScoringLoop
from .outputs import Outputs, build_sinks
from .requests import Requests
from .scorer import Scorer
from .slot import ModelSlot
from .stats import CameraState, CameraStats, StationSummary
from .swap import WATCH_INTERVAL_S, ModelWatcher, Updates
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


class Station(Closeable):
    """Inputs -> the scorer on the slot's model -> one record per frame -> the outputs (see the
    module docstring): the coordinator of threads and lifecycle."""

    def __init__(
        self,
        config: StationConfig,
        detector: Detector | None = None,
        *,
        sinks: Sequence[Sink] = (),
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """`detector`: a model the caller opened and keeps owning (the slot borrows it);
        `sinks`: an embedder's own sinks (serve's metrics, event hub, gallery), run after the
        `SINKS` table's; `on_batch(size)` is called after every backend batch."""
        self.config = config
        self.slot = ModelSlot.for_station(config, detector)
        try:
            self.cameras = Cameras(
                (c.name, CameraInput(c, threshold_for(self.detector, c.class_name, c.threshold)))
                for c in config.cameras
            )
            self.outputs = Outputs(build_sinks(sink_context(self), sinks))
        except BaseException:
            self.slot.close()
            raise
        self.sinks = self.outputs.sinks
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.requests = Requests(config.api_queue, self._wake.set) if config.api_queue else None
        self.updates = Updates(
            self.slot, self.cameras, self.outputs, config.name, lambda: phase(self), self._wake.set
        )
        self._stopping = threading.Event()
        self.loop = ScoringLoop(
            config,
            self.cameras,
            self.requests,
            Scorer(self.slot, config.name),
            self.outputs,
            self.updates,
            stopping=self._stopping,
            wake=self._wake,
            stop=self.stop,
            on_batch=on_batch,
        )
        self._ended_by: str | None = None
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
        """Where the cameras' thresholds come from (`Cameras.provenance`)."""
        return self.cameras.provenance(self.detector.thresholds)

    # -- lifecycle -------------------------------------------------------------------------

    def _begin(self) -> None:
        if self._started_at is not None:
            raise UniadError("a station can be started once; make a new Station to run again")
        for problem in threshold_warnings(self.detector.thresholds):
            log.warning("threshold %s (re-run `uniad-edge calibrate`)", problem)
        self.cameras.open(self.config, self._wake.set)
        try:
            if self.config.trigger is not None:
                self.trigger_sources.append(
                    TRIGGERS[trigger_kind(self.config.trigger)](self, self.config.trigger)
                )
        except BaseException:
            self.cameras.stop()
            raise
        with self._lock:
            self._started_at = time.perf_counter()
        self.outputs.start()

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
        summary = self.wait()
        assert summary is not None
        return summary

    def stop(self, reason: str = "stop()") -> None:
        """Stop capturing; frames already captured and serviceable triggers are still scored."""
        if not self._stopping.is_set():
            self._ended_by = self._ended_by or reason
            self._stopping.set()
        if self.requests is not None:
            self.requests.close()
        self.cameras.stop()
        self._wake.set()

    def wait(self, timeout: float | None = None) -> StationSummary | None:
        """Wait for a started station to end; its summary, or None on timeout."""
        if not self._finished.wait(timeout):
            return None
        if self._error is not None:
            raise self._error
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
            self.outputs.close()
            self.slot.close()

    @property
    def summary(self) -> StationSummary | None:
        return self._summary

    # -- the embeddable API ----------------------------------------------------------------

    def trigger_async(self, camera: str, part_id: str | None = None) -> Future[VerdictRecord]:
        """Ask for a verdict of `camera`'s next frame; the future gets its record."""
        target = self.cameras.get(camera)
        if self._finished.is_set():
            future: Future[VerdictRecord] = Future()
            future.set_exception(UniadError(f"camera {camera} has ended; no frame to score"))
            return future
        future = target.add_trigger(part_id)
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
        target = self.cameras.get(camera)
        return target.latest_frame, target.latest_verdict

    def state(self, camera: str) -> CameraState:
        return self.cameras.state(camera)

    def states(self) -> dict[str, CameraState]:
        return self.cameras.states()

    def counts(self) -> dict[str, VerdictCounts]:
        """Every camera's counters (and the API's, as "api"), with its dropped and lost frames:
        the one set of numbers `/metrics`, the event stream, OPC UA and the summary read."""
        out = self.cameras.counts()
        if self.requests is not None:
            out[API_CAMERA] = self.requests.counts_now()
        return out

    def subscribe(self, callback: Callable[[Verdict], None]) -> Callable[[], None]:
        """Call `callback(verdict)` for every verdict (on the output thread; keep it quick).
        Returns the function that unsubscribes."""
        return self.outputs.callbacks.subscribe(callback)

    def api_threshold(self, class_name: str | None = None) -> float | None:
        """The threshold an API request uses: the model's for `class_name` when given (an
        unknown class is refused), else the API's default class or override
        (`StationConfig.api_class_name`, `api_threshold`)."""
        if class_name is None:
            config = self.config
            return threshold_for(self.detector, config.api_class_name, config.api_threshold)
        return threshold_for(self.detector, class_name, None)

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

    def swap_model(self, path: str | Path, detector: Detector | None = None) -> Future[str]:
        """Load `path` in the background and swap it in between two batches (see `swap.py`);
        the future gets the new model id, or the one-line reason the old model stays. A caller
        that opened the model itself passes it as `detector` and keeps owning it (the slot's
        rule: borrowed)."""
        return self.updates.swap(path, detector)

    def watch_model(
        self, path: str | Path | None = None, interval_s: float = WATCH_INTERVAL_S
    ) -> ModelWatcher:
        """Swap in `path` (default: the station's model file) whenever it is replaced, until
        the returned watcher is closed."""
        target = path if path is not None else self.config.model
        if target is None or "://" in str(target):
            raise UniadError("--watch-model needs a model file (not a Triton URL)")
        return ModelWatcher(target, self.swap_model, interval_s)

    # -- scoring ---------------------------------------------------------------------------

    def _score_loop(self) -> None:
        try:
            self.loop.run()
        except BaseException as exc:
            self._error = exc
            self.stop("error")
        finally:
            self._finish()

    def _finish(self) -> None:
        self.slot.cancel("the station stopped before the new model could take over")
        self.cameras.stop()
        self.cameras.fail_triggers("the station stopped")
        if self.requests is not None:
            self.requests.close()
            self.requests.fail_waiting("the station stopped")
        for trigger_source in self.trigger_sources:
            trigger_source.close()
        self.outputs.finish()
        self.cameras.join(timeout=5)
        elapsed = time.perf_counter() - (self._started_at or time.perf_counter())
        self.outputs.close()
        self.slot.close()
        states = self.states()
        failed = [name for name, s in states.items() if s.status == "failed"]
        self._summary = StationSummary(
            elapsed_s=elapsed,
            cameras={c.name: c.stats for c in self.cameras.values()},
            states=states,
            ended_by=self._ended_by or ("source failed" if failed else "end of stream"),
            sinks=self.outputs.summary(),
            failed_cameras=failed,
            thresholds=self.threshold_provenance,
            api=self.requests.stats if self.requests is not None else None,
        )
        with self._lock:
            self._finished.set()


def sink_context(station: Station) -> SinkContext:
    """What the sinks may know of this station (see `sinks.SinkContext`)."""
    return SinkContext(
        config=station.config,
        cameras=tuple(station.cameras),
        counters=lambda: {name: dataclasses.asdict(s) for name, s in station.states().items()},
        model_id=lambda: station.model_id,
        threshold_provenance=lambda: station.threshold_provenance,
        subscribe=station.subscribe,
        trigger=station.trigger_async,
        stop=station.stop,
    )


def phase(station: Station) -> str:
    """ "idle" (not started), "scoring" or "ended": when a checked model may be installed."""
    with station._lock:
        if station._finished.is_set():
            return "ended"
        return "idle" if station._started_at is None else "scoring"
