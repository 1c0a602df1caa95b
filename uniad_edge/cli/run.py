"""`uniad-edge run`: options -> `StationConfig` -> `Station.run()`; summary and exit code.

Imports only the lean runtime (numpy, OpenCV, the backend in use), never torch.
Exit codes: 0 done, 2 bad input (one-line error), 3 a live camera gave up reconnecting.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from pathlib import Path
from typing import Annotated, Any

import cv2
import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from ..errors import UniadError
from ..metadata import DEFAULT_ENGINE_DIR
from ..runtime.backends.model_choice import DEFAULT_ONNX, default_model
from ..runtime.capture.video import DEVICE_PATIENCE_S
from ..runtime.station import CameraConfig, Station, StationConfig
from ..runtime.station.file import load_station_file
from ..runtime.station.report import summary_table
from .app import app
from .live import reload_on_sighup, status_line, stop_on_signals
from .opcua_options import OpcuaCert, OpcuaKey, OpcuaPassword, OpcuaUrl, OpcuaUser, opcua_config
from .options import (
    Backend,
    KeepEvidence,
    LogKeep,
    LogMaxMb,
    Providers,
    StationFile,
    Threads,
    Threshold,
    default,
    given,
    split_providers,
)

EXIT_SOURCE_FAILED = 3
DEFAULT_MODEL_HELP = f"newest usable engine in {DEFAULT_ENGINE_DIR}/, else {DEFAULT_ONNX}"
StationModel = Annotated[
    str | None,
    typer.Option(
        help="ONNX, engine, checkpoint or Triton URL (grpc://host:8001/uniad)",
        show_default=DEFAULT_MODEL_HELP,
    ),
]
NAMED_SOURCE = re.compile(r"^([A-Za-z0-9_.-]+)=(.+)$")


def parse_sources(sources: list[str], camera: int | None) -> list[tuple[str, str | int]]:
    """`--source NAME=URI` (or a bare URI, named cam0, cam1, ...) and `--camera N`."""
    parsed: list[tuple[str, str | int]] = []
    if camera is not None:
        parsed.append((f"camera{camera}", camera))
    for i, text in enumerate(sources):
        match = NAMED_SOURCE.match(text)
        if match and not Path(text).exists():
            parsed.append((match.group(1), match.group(2)))
        else:
            parsed.append((f"cam{i}" if len(sources) > 1 else "cam0", text))
    return parsed


def parse_cameras(
    sources: list[str], camera: int | None, class_name: str | None, threshold: float | None
) -> list[CameraConfig]:
    """The cameras `--source`/`--camera` name, each with the command line's class and threshold."""
    return [
        CameraConfig(name, uri, class_name=class_name, threshold=threshold)
        for name, uri in parse_sources(sources, camera)
    ]


def station_config(
    station: Path | None, cameras: list[CameraConfig], options: dict[str, Any]
) -> StationConfig:
    """The --station file with the given options over it, or the cameras with them alone
    (options left None keep `StationConfig`'s defaults); with no model named anywhere, the
    default model (a new config, so every check runs on it)."""
    if station is not None:
        config = load_station_file(station, cameras=cameras, **options)
    else:
        config = StationConfig(cameras=cameras, **given(**options))
    if config.model is None:
        config = dataclasses.replace(config, model=default_model())
    return config


@app.command()
def run(
    model: StationModel = None,
    camera: Annotated[
        int | None,
        typer.Option(
            help=f"camera index (e.g. 0); not up within {DEVICE_PATIENCE_S:g} s: exit 3, unless "
            "--reconnect-tries forever"
        ),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            help="[NAME=]video file, image folder or glob, rtsp/http URL, GStreamer pipeline, "
            "gige://DEVICE?settings (a GenICam camera, see `uniad-edge cameras`); "
            "repeat for several cameras"
        ),
    ] = None,
    station: StationFile = None,
    show_window: Annotated[
        bool, typer.Option("--show", help="show an OpenCV window per camera with the overlay")
    ] = False,
    save_dir: Annotated[
        Path | None, typer.Option(help="folder that keeps NG frames and heatmap overlays")
    ] = None,
    log: Annotated[
        Path | None, typer.Option(help="JSONL file, one record per frame (appended)")
    ] = None,
    log_max_mb: LogMaxMb = None,
    log_keep: LogKeep = None,
    keep_evidence: KeepEvidence = None,
    max_frames: Annotated[
        int | None, typer.Option(min=1, help="stop after N frames (all cameras together)")
    ] = None,
    threshold: Threshold = None,
    class_name: Annotated[
        str | None, typer.Option(help="use this class's threshold from the model")
    ] = None,
    backend: Backend = None,
    threads: Threads = None,
    providers: Providers = None,
    bit_depth: Annotated[
        int | None,
        typer.Option(min=9, max=16, help="bits a 16-bit camera/PNG/TIFF really uses (e.g. 12)"),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="most frames scored together (one per camera)",
            show_default=default(StationConfig, "max_batch"),
        ),
    ] = None,
    mqtt: Annotated[
        str | None,
        typer.Option(help="publish each verdict to mqtt://host:port/topic (QoS 1)"),
    ] = None,
    mqtt_buffer: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="unsent MQTT verdicts kept while the broker is away",
            show_default=default(StationConfig, "mqtt_buffer"),
        ),
    ] = None,
    trigger: Annotated[
        str | None,
        typer.Option(help="score only on a trigger: 'stdin' or mqtt://host:port/topic"),
    ] = None,
    reconnect_tries: Annotated[
        str | None,
        typer.Option(
            help="reopen a failed (or not yet up) live source N times, or 'forever'",
            show_default=f"a camera index gives up after {DEVICE_PATIENCE_S:g} s, a URL or "
            "pipeline waits forever",
        ),
    ] = None,
    reconnect_max_wait: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            help="longest wait between reconnects, seconds",
            show_default=default(StationConfig, "reconnect_max_wait"),
        ),
    ] = None,
    write_retry: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            help="after a write error (full disk), retry every S seconds",
            show_default=default(StationConfig, "write_retry_s"),
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="station name in records and MQTT", show_default=default(StationConfig, "name")
        ),
    ] = None,
    opcua: OpcuaUrl = None,
    opcua_user: OpcuaUser = None,
    opcua_password: OpcuaPassword = None,
    opcua_cert: OpcuaCert = None,
    opcua_key: OpcuaKey = None,
    watch_model: Annotated[
        bool,
        typer.Option(
            "--watch-model", help="swap in the model file whenever it is replaced (SIGHUP always)"
        ),
    ] = False,
) -> None:
    """Score one or several cameras: OK/NG per frame, JSONL log, NG evidence, MQTT."""
    if camera is None and not source and station is None:
        raise UniadError("give --camera N, --source [NAME=]S (repeatable) or --station FILE")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    cameras = parse_cameras(source or [], camera, class_name, threshold)
    options = {
        "name": name,
        "providers": split_providers(providers),
        "threads": threads,
        "bit_depth": bit_depth,
        "max_batch": batch,
        "trigger": trigger,
        "log": log,
        "save_dir": save_dir,
        "log_max_mb": log_max_mb,
        "log_keep": log_keep,
        "keep_evidence": keep_evidence,
        "mqtt": mqtt,
        "mqtt_buffer": mqtt_buffer,
        "show": show_window or None,
        "max_frames": max_frames,
        "reconnect_max_wait": reconnect_max_wait,
        "write_retry_s": write_retry,
        "reconnect_tries": reconnect_tries,
        "model": model,
        "backend": backend,
        "opcua": opcua_config(opcua, opcua_user, opcua_password, opcua_cert, opcua_key),
    }
    config = station_config(station, cameras, options).require_cameras()
    for module in ("swap", "slot"):  # "model swapped", "<file> changed; loading it"
        logging.getLogger(f"uniad_edge.runtime.station.{module}").setLevel(logging.INFO)
    with contextlib.ExitStack() as stack:
        inspection = stack.enter_context(Station(config))
        stack.enter_context(stop_on_signals(inspection))
        stack.enter_context(reload_on_sighup(inspection))
        if watch_model:
            stack.enter_context(inspection.watch_model())
        err = Console(stderr=True)
        err.print(f"thresholds: {escape(inspection.threshold_provenance)}", highlight=False)
        with Live(
            console=err,
            refresh_per_second=4,
            transient=True,
            get_renderable=lambda: Text(status_line(inspection)),
        ):
            summary = inspection.run()
    unscorable = summary.frames == summary.errors and not config.trigger_only
    if summary.frames or not (summary.failed_cameras or unscorable):  # else: only the error
        Console().print(summary_table(summary))
    if summary.failed_cameras:
        Console(stderr=True).print(
            f"[bold red]error:[/] live source gave up: {escape(', '.join(summary.failed_cameras))} "
            "(see --reconnect-tries; `--reconnect-tries forever` waits for a camera that is "
            "not up yet)",
            highlight=False,
        )
        raise typer.Exit(EXIT_SOURCE_FAILED)
    if unscorable:
        sources = ", ".join(c.description for c in inspection.cameras.values())
        reasons = {s.last_error for s in summary.cameras.values() if s.last_error}
        why = f": {'; '.join(sorted(reasons))}" if reasons else ""
        raise UniadError(f"no frame could be scored from {sources}{why}")
