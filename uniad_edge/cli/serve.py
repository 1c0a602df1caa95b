"""`uniad-edge serve`: the scoring service, cameras and live dashboard on one HTTP port.

Option parsing only: defaults live in `ServeConfig` and its `StationConfig`, the work in
`uniad_edge.serve`. FastAPI and uvicorn are imported inside the command, so other commands run
without the serve extra (`serve.config` needs neither).
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
from ..redact import redact_url
from ..runtime.station import StationConfig
from ..serve.config import ServeConfig, is_loopback
from .app import app
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
    split_providers,
)
from .run import StationModel, parse_cameras, station_config


@app.command()
def serve(
    model: StationModel = None,
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
    host: Annotated[
        str | None, typer.Option(help="address to bind", show_default=default(ServeConfig, "host"))
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="TCP port", show_default=default(ServeConfig, "port"))
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="another name clients may use in the Host header (a DNS name of this machine); "
            "repeatable. Others get 421, so a DNS-rebinding page cannot read the API",
            show_default="loopback names and --host",
        ),
    ] = None,
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
        float | None,
        typer.Option(
            help="larger request bodies get 413", show_default=default(ServeConfig, "max_upload_mb")
        ),
    ] = None,
    max_pixels: Annotated[
        int | None,
        typer.Option(
            help="images whose header says more pixels get 413, before decoding",
            show_default=default(ServeConfig, "max_pixels"),
        ),
    ] = None,
    queue_size: Annotated[
        int | None,
        typer.Option(
            help="images waiting to be scored before 503",
            show_default=default(ServeConfig, "queue_size"),
        ),
    ] = None,
    max_batch: Annotated[
        int | None,
        typer.Option(
            help="images per backend call (dynamic-batch models)",
            show_default=default(StationConfig, "max_batch"),
        ),
    ] = None,
    save_dir: Annotated[
        Path | None, typer.Option(help="folder for NG frames and overlays (the gallery)")
    ] = None,
    log: Annotated[Path | None, typer.Option(help="JSONL file, one record per verdict")] = None,
    log_max_mb: LogMaxMb = None,
    log_keep: LogKeep = None,
    keep_evidence: KeepEvidence = None,
    class_name: Annotated[
        str | None, typer.Option(help="default class whose threshold is used")
    ] = None,
    threshold: Threshold = None,
    backend: Backend = None,
    threads: Threads = None,
    providers: Providers = None,
    mjpeg_fps: Annotated[
        float | None,
        typer.Option(
            help="frame-rate cap of the live MJPEG streams",
            show_default=default(ServeConfig, "mjpeg_fps"),
        ),
    ] = None,
    max_connections: Annotated[
        int | None,
        typer.Option(
            help="open connections at most; beyond it the one idle longest is closed",
            show_default=default(ServeConfig, "max_connections"),
        ),
    ] = None,
    header_timeout: Annotated[
        float | None,
        typer.Option(
            help="seconds a connection has to send its request head",
            show_default=default(ServeConfig, "header_timeout_s"),
        ),
    ] = None,
    body_timeout: Annotated[
        float | None,
        typer.Option(
            help="seconds a request has to send its whole body after its head",
            show_default=default(ServeConfig, "body_timeout_s"),
        ),
    ] = None,
    model_dir: Annotated[
        list[Path] | None,
        typer.Option(
            help="another folder POST /v1/model may load models from; repeatable",
            show_default="the --model's folder",
        ),
    ] = None,
    allow_remote_models: Annotated[
        bool,
        typer.Option(
            "--allow-remote-models",
            help="let POST /v1/model load Triton URLs (the server connects to them)",
        ),
    ] = False,
    opcua: OpcuaUrl = None,
    opcua_user: OpcuaUser = None,
    opcua_password: OpcuaPassword = None,
    opcua_cert: OpcuaCert = None,
    opcua_key: OpcuaKey = None,
) -> None:
    """Serve the model over HTTP: scoring API, cameras, live dashboard, Prometheus metrics."""
    try:
        from ..serve.server import serve as run_server
    except ImportError as exc:
        raise UniadError(
            f"serve needs FastAPI and uvicorn ({exc.name} is missing); "
            "pip install 'uniad-edge[serve]'"
        ) from None
    from ..runtime.station.report import summary_table

    cameras = parse_cameras(source or [], None, class_name, threshold)
    station_options = {
        "model": model,
        "backend": backend,
        "providers": split_providers(providers),
        "threads": threads,
        "max_batch": max_batch,
        "log": log,
        "save_dir": save_dir,
        "log_max_mb": log_max_mb,
        "log_keep": log_keep,
        "keep_evidence": keep_evidence,
        "mqtt": mqtt,
        "trigger_only": trigger_only or None,
        "opcua": opcua_config(opcua, opcua_user, opcua_password, opcua_cert, opcua_key),
    }
    station_settings = station_config(station, cameras, station_options)
    if station_settings.opcua is not None and not station_settings.cameras:
        raise UniadError("--opcua serves cameras' verdicts: give --source or --station too")
    config = ServeConfig.from_options(
        station=station_settings,
        host=host,
        port=port,
        allowed_hosts=tuple(allowed_host) if allowed_host else None,
        token=token,
        insecure=insecure or None,
        tls_cert=tls_cert,
        tls_key=tls_key,
        max_upload_mb=max_upload_mb,
        max_pixels=max_pixels,
        queue_size=queue_size,
        class_name=class_name,
        threshold=threshold,
        mjpeg_fps=mjpeg_fps,
        model_dirs=tuple(model_dir) if model_dir else None,
        allow_remote_models=allow_remote_models or None,
        max_connections=max_connections,
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
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
        config,
        on_listening=lambda: err.print(
            f"serving {escape(redact_url(str(config.station.model)))} on {url}"
        ),
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
