"""Every default of the service in one place, and the rules a configuration must obey."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..artifacts import url_scheme
from ..errors import UniadError
from ..hosts import LOOPBACK_NAMES, is_loopback
from ..runtime.station import StationConfig

LOOPBACK_HOSTS = LOOPBACK_NAMES | {"127.0.0.1", "::1", "[::1]"}
MAX_UPLOAD_MB = 4096  # a finite cap: the limit is compared with byte counts


class ModelSourceRefused(UniadError):
    """A model POST /v1/model may not load (HTTP 403): outside the model folders, or remote."""


@dataclass(frozen=True)
class ServeConfig:
    """What `uniad-edge serve` runs with: the HTTP settings, and the `StationConfig` that holds
    the model, backend, batching, outputs and cameras (none: a pure scoring service). The CLI
    passes None for options the user left out; defaults live only here and in StationConfig."""

    station: StationConfig = field(default_factory=StationConfig)
    host: str = "127.0.0.1"
    port: int = 8080
    allowed_hosts: tuple[str, ...] = ()  # Host header names accepted besides loopback and --host
    token: str | None = None
    insecure: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_upload_mb: float = 20.0
    max_pixels: int = 50_000_000  # per image, from its header, before it is decoded
    queue_size: int = 64
    class_name: str | None = None  # the API's default class (cameras have their own)
    threshold: float | None = None  # the API's threshold override
    mjpeg_fps: float = 5.0
    history_s: float = 300.0
    gallery_size: int = 24
    graceful_timeout_s: float = 10.0
    # Connections (serve/connections.py): at most this many open; a request head must arrive
    # within header_timeout_s and its body within body_timeout_s after it (20 MB at 10 Mbit/s
    # takes 17 s); an idle keep-alive connection closes after keepalive_timeout_s
    max_connections: int = 256
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    keepalive_timeout_s: int = 5
    max_header_kb: int = 16  # a request head over this is refused (h11)
    # POST /v1/model loads files under the first model's folder and these only; a Triton URL
    # (the server connects to it) only with allow_remote_models
    model_dirs: tuple[Path, ...] = ()
    allow_remote_models: bool = False

    @classmethod
    def from_options(cls, **options: Any) -> ServeConfig:
        """A config from CLI options, None meaning "the default": defaults live only here and
        in `StationConfig`. `StationConfig` fields (model, log, max_batch, ...) go into
        `station` (a given `station` is copied with them applied, so its checks run again)."""
        own = {f.name for f in fields(cls)}
        station_fields = {f.name for f in fields(StationConfig)} - {"cameras"}
        unknown = set(options) - own - station_fields
        if unknown:
            raise TypeError(f"unknown serve options: {', '.join(sorted(unknown))}")
        given = {k: v for k, v in options.items() if v is not None}
        for_station = {k: given.pop(k) for k in list(given) if k not in own}
        station = given.pop("station", None)
        if station is None:
            station = StationConfig(**for_station)
        elif for_station:
            station = replace(station, **for_station)
        return cls(station=station, **given).validated()

    def validated(self) -> ServeConfig:
        """Refuse what would be unsafe or cannot work, with the flag that fixes it."""
        if self.station.model is None:
            raise UniadError("serve needs a model: give --model (or model = in --station)")
        if not is_loopback(self.host) and not self.token and not self.insecure:
            raise UniadError(
                f"--host {self.host} is reachable from the network: give --token SECRET (or "
                "UNIAD_EDGE_TOKEN) so every request must carry it, or --insecure to serve "
                "without one"
            )
        if self.token is not None:
            if not self.token.isascii() or not self.token.isprintable():
                raise UniadError(
                    "--token (UNIAD_EDGE_TOKEN) must be printable ASCII: HTTP headers carry "
                    "bytes, and a non-ASCII token would never match one"
                )
            if len(self.token) < 8:
                raise UniadError("--token must be at least 8 characters long")
        if not 0 < self.port < 65536:
            raise UniadError(f"--port must be 1..65535, got {self.port}")
        if not 0 < self.max_upload_mb < MAX_UPLOAD_MB:
            raise UniadError(
                f"--max-upload-mb must be > 0 and below {MAX_UPLOAD_MB}, got {self.max_upload_mb}"
            )
        if self.max_pixels < 1:
            raise UniadError(f"--max-pixels must be >= 1, got {self.max_pixels}")
        if self.queue_size < 1:
            raise UniadError("--queue-size must be >= 1")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise UniadError("HTTPS needs both --tls-cert and --tls-key (PEM files)")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not Path(path).is_file():
                raise UniadError(f"TLS file {path} not found; give a PEM certificate and key")
        if self.max_connections < 1 or self.max_header_kb < 1 or self.keepalive_timeout_s < 1:
            raise UniadError(
                "--max-connections, the header size limit and the keep-alive timeout must be >= 1"
            )
        for option, seconds in (
            ("--header-timeout", self.header_timeout_s),
            ("--body-timeout", self.body_timeout_s),
        ):
            if not 0 < seconds < math.inf:
                raise UniadError(f"{option} must be > 0 seconds, got {seconds}")
        if not 0 < self.mjpeg_fps < math.inf:
            raise UniadError(f"--mjpeg-fps must be > 0, got {self.mjpeg_fps}")
        for folder in self.model_dirs:
            if not Path(folder).expanduser().is_dir():
                raise UniadError(f"--model-dir {folder} is not a folder")
        for name in self.allowed_hosts:
            if not name or any(ch in name for ch in " /\\@") or not name.isascii():
                raise UniadError(f"--allowed-host {name!r} is not a host name")
        return replace(self, allowed_hosts=tuple(h.lower() for h in self.allowed_hosts))

    @property
    def host_names(self) -> frozenset[str]:
        """Host header names (without port) a request may carry: loopback names, the bound
        host and every --allowed-host; a DNS-rebinding page carries its own name, refused."""
        return frozenset({*LOOPBACK_HOSTS, self.host.lower(), *self.allowed_hosts})

    @property
    def model_folders(self) -> tuple[Path, ...]:
        """Where POST /v1/model may load from: the first model's folder (when it is a file) and
        every --model-dir, resolved (a link out of them leads out of them)."""
        model = self.station.model
        first = () if model is None or url_scheme(model) else (Path(model).expanduser().parent,)
        return tuple(f.expanduser().resolve() for f in (*first, *map(Path, self.model_dirs)))

    def check_model_source(self, path: str) -> None:
        """Refuse a model POST /v1/model may not load, before anything opens it: a request
        must not make the server read any file it can reach, nor connect out to a "model"
        that answers OK to everything."""
        if url_scheme(path) is not None:
            if not self.allow_remote_models:
                raise ModelSourceRefused(
                    "POST /v1/model loads local files only; start serve with "
                    "--allow-remote-models to accept Triton URLs"
                )
            return
        folders = self.model_folders
        try:
            resolved = Path(path).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):
            resolved = None
        if resolved is None or not any(resolved.is_relative_to(f) for f in folders):
            where = ", ".join(str(f) for f in folders) or "none (the model is a URL)"
            raise ModelSourceRefused(
                f"{path} is outside the model folders ({where}); move it there or start serve "
                "with --model-dir FOLDER"
            )

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert is not None else "http"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
