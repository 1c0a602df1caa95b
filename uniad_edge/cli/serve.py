"""`uniad-edge serve`: the scoring service, cameras and live dashboard on one HTTP port.

Option parsing only: defaults live in `ServeConfig`, the work in `uniad_edge.serve`. FastAPI
and uvicorn are imported inside the command, so other commands run without the serve extra.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import UniadError
from ..runtime.backends import registry
from .app import app
from .options import Providers, StationFile, Threads, Threshold, split_providers


@app.command()
def serve(
    model: Annotated[
        str | None,
        typer.Option(
            help="ONNX, engine, checkpoint or Triton URL (grpc://host:8001/uniad); default as "
            "for `run`"
        ),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            help="camera as [NAME=]URI (index, file, folder, glob, URL, GStreamer); repeatable"
        ),
    ] = None,
    station: StationFile = None,
    trigger_only: Annotated[
        bool,
        typer.Option(
            "--trigger-only", help="score camera frames only on POST /v1/cameras/NAME/trigger"
        ),
    ] = False,
    mqtt: Annotated[
        str | None, typer.Option(help="publish camera verdicts to mqtt://host:port/topic")
    ] = None,
    host: Annotated[str | None, typer.Option(help="address to bind [127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port [8080]")] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="UNIAD_EDGE_TOKEN",
            help="bearer token required on every request (env UNIAD_EDGE_TOKEN keeps it out "
            "of the process list)",
        ),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="allow a non-loopback --host without a token")
    ] = False,
    tls_cert: Annotated[
        Path | None, typer.Option(help="PEM certificate: serve HTTPS (with --tls-key)")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert")] = None,
    max_upload_mb: Annotated[
        float | None, typer.Option(help="larger request bodies get 413 [20]")
    ] = None,
    queue_size: Annotated[
        int | None, typer.Option(help="images waiting to be scored before 503 [64]")
    ] = None,
    max_batch: Annotated[
        int | None, typer.Option(help="images per backend call (dynamic-batch models) [8]")
    ] = None,
    save_dir: Annotated[
        Path | None, typer.Option(help="folder for NG frames and overlays (the gallery)")
    ] = None,
    log: Annotated[Path | None, typer.Option(help="JSONL file, one record per verdict")] = None,
    class_name: Annotated[
        str | None, typer.Option(help="default class whose threshold is used")
    ] = None,
    threshold: Threshold = None,
    backend: Annotated[
        str | None,
        typer.Option(help=f"one of {', '.join(registry.names())}; default: from the suffix"),
    ] = None,
    threads: Threads = None,
    providers: Providers = None,
    mjpeg_fps: Annotated[
        float | None, typer.Option(help="frame-rate cap of the live MJPEG streams [5]")
    ] = None,
) -> None:
    """Serve the model over HTTP: scoring API, cameras, live dashboard, Prometheus metrics."""
    try:
        from ..serve.config import ServeConfig, is_loopback
        from ..serve.server import serve as run_server
    except ImportError as exc:
        raise UniadError(
            f"serve needs FastAPI and uvicorn ({exc.name} is missing); "
            "pip install 'uniad-edge[serve]'"
        ) from None
    from ..runtime.backends.model_choice import default_model
    from ..runtime.station import StationConfig
    from ..runtime.station.report import summary_table
    from .run import parse_cameras, station_config

    cameras = parse_cameras(source or [], None, class_name, threshold)
    provider_list = split_providers(providers)
    camera_options = {
        "model": model,
        "backend": backend,
        "providers": provider_list,
        "threads": threads,
        "max_batch": max_batch,
        "log": log,
        "save_dir": save_dir,
        "mqtt": mqtt,
        "trigger_only": trigger_only or None,
    }
    cameras_config: StationConfig | None = None
    if station is not None or cameras:
        cameras_config = station_config(station, cameras, camera_options)
        # the API's log and evidence go where the cameras' go
        model = model or cameras_config.model
        log, save_dir = cameras_config.log, cameras_config.save_dir
    config = ServeConfig.from_options(
        model=model or default_model(),
        station=cameras_config,
        host=host,
        port=port,
        token=token,
        insecure=insecure or None,
        tls_cert=tls_cert,
        tls_key=tls_key,
        max_upload_mb=max_upload_mb,
        queue_size=queue_size,
        max_batch=max_batch,
        save_dir=save_dir,
        log=log,
        class_name=class_name,
        threshold=threshold,
        backend=backend,
        threads=threads,
        providers=tuple(provider_list) if provider_list else None,
        mjpeg_fps=mjpeg_fps,
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    err = Console(stderr=True)
    if not is_loopback(config.host) and config.token is None:
        err.print(
            f"[yellow]warning:[/] serving on {escape(config.host)} without a token (--insecure)"
        )
    elif not is_loopback(config.host) and config.tls_cert is None:
        err.print(
            "[yellow]warning:[/] the token travels in clear text over HTTP; give --tls-cert and "
            "--tls-key or put a TLS reverse proxy in front"
        )
    url = f"{config.scheme}://{escape(config.host)}:{config.port}/"
    summary = run_server(
        config, on_listening=lambda: err.print(f"serving {escape(str(config.model))} on {url}")
    )
    table = Table(title="uniad-edge serve")
    for column in ("camera", "scored", "OK", "NG", "ERROR"):
        table.add_column(column, justify="left" if column == "camera" else "right")
    for camera, counts in sorted(summary.counters.items()):
        counted = [str(counts[key]) for key in ("total", "OK", "NG", "ERROR")]
        table.add_row(escape(camera), *counted)
    Console().print(table)
    if summary.station is not None:
        Console().print(summary_table(summary.station, title="uniad-edge serve: station"))
