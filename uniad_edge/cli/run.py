"""`uniad-edge run`: score a camera, video, image folder or stream; log, keep NG evidence, show.

Imports only the lean runtime (numpy, OpenCV, the backend in use), never torch.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Annotated

import cv2
import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from ..errors import UniadError
from ..runtime.capture import Frame, open_source
from ..runtime.detector import Detection, Detector
from ..runtime.pipeline import Pipeline
from ..runtime.recorder import EvidenceSaver, JsonlLog, frame_record
from .app import app

DEFAULT_ONNX = Path("export/model.onnx")
DEFAULT_ENGINES = Path("engines")
WINDOW = "uniad-edge"
STAGES = ("capture", "preprocess", "inference", "postprocess")


@dataclass
class RunStats:
    """Counters and latency sums behind the status line and the final summary."""

    started: float = field(default_factory=time.perf_counter)
    frames: int = 0
    ok: int = 0
    ng: int = 0
    latency_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    recent: list[float] = field(default_factory=list)

    def add(self, record: dict) -> None:
        self.frames += 1
        self.ok += record["verdict"] == "OK"
        self.ng += record["verdict"] == "NG"
        for key, value in record["latency_ms"].items():
            self.latency_ms[key] += value
        self.recent = [*self.recent[-29:], time.perf_counter()]

    @property
    def fps(self) -> float:
        """Over the last 30 frames, so the status line follows changes in load."""
        if len(self.recent) < 2:
            return 0.0
        return (len(self.recent) - 1) / max(self.recent[-1] - self.recent[0], 1e-9)

    def mean(self, key: str) -> float:
        return self.latency_ms[key] / self.frames if self.frames else 0.0

    def status(self) -> str:
        total = sum(self.mean(k) for k in self.latency_ms)
        return (
            f"frames {self.frames}  fps {self.fps:6.1f}  latency {total:6.1f} ms "
            f"(inference {self.mean('inference'):.1f})  OK {self.ok}  NG {self.ng}"
        )


def default_model() -> Path:
    """Newest engine in engines/ usable on this machine, else export/model.onnx, else the newest
    .onnx in export/ (an export named after its checkpoint, e.g. best.onnx)."""
    from ..trt import environment
    from ..trt.sidecar import find_engines

    status = environment.detect()
    if status.usable and status.gpu is not None and status.tensorrt_version is not None:
        engines = find_engines(DEFAULT_ENGINES, status.tensorrt_version, status.gpu)
        if engines:
            return engines[0]
    if DEFAULT_ONNX.is_file():
        return DEFAULT_ONNX
    exported = sorted(DEFAULT_ONNX.parent.glob("*.onnx"), key=lambda p: p.stat().st_mtime)
    if exported:
        Console(stderr=True).print(f"using {exported[-1]} (newest in {DEFAULT_ONNX.parent}/)")
        return exported[-1]
    raise UniadError(
        f"no model given and {DEFAULT_ONNX} does not exist (nor a usable engine in "
        f"{DEFAULT_ENGINES}/); run `uniad-edge export` first or pass --model"
    )


def check_display() -> None:
    """--show needs a screen; say so at start instead of crashing in cv2.imshow."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise UniadError("--show needs a display (DISPLAY is not set); run headless without --show")
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    except cv2.error as exc:
        raise UniadError(
            f"--show: OpenCV cannot open a window ({exc.err}); install opencv-python "
            "(not -headless) or run without --show"
        ) from None


class StopOnSignal:
    """First Ctrl-C/SIGTERM asks the pipeline to drain and stop; a second Ctrl-C aborts."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self.pipeline.stop()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def show(frame: Frame, detection: Detection, stats: RunStats) -> bool:
    """Draw one frame in the window; False when the user pressed q or Esc."""
    image = detection.overlay(frame.image)
    cv2.putText(
        image,
        f"{stats.fps:.1f} fps",
        (8, image.shape[0] - 10),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.6,
        (255, 255, 255),
        1,
    )
    cv2.imshow(WINDOW, image)
    return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)


def summary_table(stats: RunStats, stream_info: dict[str, int], stopped_by: str | None) -> Table:
    elapsed = time.perf_counter() - stats.started
    table = Table(title="uniad-edge run", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = {
        "frames scored": stats.frames,
        "OK": stats.ok,
        "NG": stats.ng,
        **stream_info,
        "elapsed s": f"{elapsed:.2f}",
        "mean fps": f"{stats.frames / elapsed:.1f}" if elapsed > 0 else "-",
        **{f"mean {k} ms": f"{stats.mean(k):.2f}" for k in stats.latency_ms},
        "ended by": stopped_by or "end of stream",
    }
    for key, value in rows.items():
        table.add_row(key, str(value))
    return table


@app.command()
def run(
    model: Annotated[
        Path | None,
        typer.Option(
            help="ONNX, engine or checkpoint; default: newest usable engine in "
            "engines/, else export/model.onnx"
        ),
    ] = None,
    camera: Annotated[int | None, typer.Option(help="camera index (e.g. 0)")] = None,
    source: Annotated[
        str | None,
        typer.Option(help="video file, image folder or glob, rtsp/http URL, GStreamer pipeline"),
    ] = None,
    show_window: Annotated[
        bool, typer.Option("--show", help="show an OpenCV window with the overlay")
    ] = False,
    save_dir: Annotated[
        Path | None, typer.Option(help="folder that keeps NG frames and heatmap overlays")
    ] = None,
    log: Annotated[
        Path | None, typer.Option(help="JSONL file, one record per frame (appended)")
    ] = None,
    max_frames: Annotated[int | None, typer.Option(min=1, help="stop after N frames")] = None,
    threshold: Annotated[
        float | None, typer.Option(help="raw-score threshold overriding the model's")
    ] = None,
    class_name: Annotated[
        str | None, typer.Option(help="use this class's threshold from the model")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="ONNX Runtime intra-op threads")
    ] = None,
    providers: Annotated[
        str | None, typer.Option(help="comma-separated ONNX Runtime providers, e.g. cuda,cpu")
    ] = None,
) -> None:
    """Score every frame of a camera or source: OK/NG per frame, JSONL log, NG evidence."""
    if (camera is None) == (source is None):
        raise UniadError("give exactly one of --camera N or --source S")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    err = Console(stderr=True)
    if show_window:
        check_display()
    saver = EvidenceSaver(save_dir) if save_dir is not None else None
    detector = Detector(
        model or default_model(),
        providers=providers.split(",") if providers else None,
        threads=threads,
        class_name=class_name,
        threshold=threshold,
    )
    err.print(f"thresholds: {escape(detector.provenance)}", highlight=False)
    journal = JsonlLog(log) if log is not None else None
    stream = open_source(camera if camera is not None else source)  # type: ignore[arg-type]
    source_name = stream.description
    pipeline = Pipeline(detector, stream)
    stats = RunStats()
    try:
        with (
            StopOnSignal(pipeline) as stopper,
            Live(console=err, refresh_per_second=4, transient=True, get_renderable=stats.status),
        ):
            for frame, detection in pipeline:
                t0 = time.perf_counter()
                if saver is not None and detection.is_anomalous:
                    saver.save(frame, detection)
                keep_going = show(frame, detection, stats) if show_window else True
                record = frame_record(
                    frame, detection, source_name, (time.perf_counter() - t0) * 1e3
                )
                if journal is not None:
                    journal.write(record)
                stats.add(record)
                if not keep_going or (max_frames is not None and stats.frames >= max_frames):
                    pipeline.stop()
                    break
    finally:
        if journal is not None:
            journal.close()
        detector.close()
        if show_window:
            cv2.destroyAllWindows()
    info = {"dropped (live)": stream.dropped, "reconnects": stream.reconnects}
    info["thresholds"] = escape(detector.provenance)
    skipped = getattr(stream.reader, "skipped", 0)
    if skipped:
        info["unreadable images skipped"] = skipped
    Console().print(summary_table(stats, info, stopper.signal_name))
    if stats.frames == 0:
        raise UniadError(f"no frame could be scored from {source_name}")
