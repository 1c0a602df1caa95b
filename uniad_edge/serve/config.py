"""Every default of the service in one place, and the rules a configuration must obey."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..errors import UniadError
from ..hosts import is_loopback
from ..metadata import DEFAULT_MAX_BATCH
from ..runtime.station import StationConfig


@dataclass(frozen=True)
class ServeConfig:
    """What `uniad-edge serve` runs with; the CLI passes None for options the user left out."""

    model: Path | str  # a file, or a Triton URL (grpc://host:8001/uniad)
    station: StationConfig | None = None  # cameras; None: a pure scoring service
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    insecure: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_upload_mb: float = 20.0
    queue_size: int = 64
    max_batch: int = DEFAULT_MAX_BATCH
    save_dir: Path | None = None
    log: Path | None = None
    class_name: str | None = None
    threshold: float | None = None
    backend: str = "auto"
    threads: int | None = None
    providers: tuple[str, ...] | None = None
    mjpeg_fps: float = 5.0
    history_s: float = 300.0
    gallery_size: int = 24
    graceful_timeout_s: float = 10.0

    @classmethod
    def from_options(cls, **options: Any) -> ServeConfig:
        """A config from CLI options, None meaning "the default": defaults live only here."""
        known = {f.name for f in fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise TypeError(f"unknown serve options: {', '.join(sorted(unknown))}")
        return cls(**{k: v for k, v in options.items() if v is not None}).validated()

    def validated(self) -> ServeConfig:
        """Refuse what would be unsafe or cannot work, with the flag that fixes it."""
        if not is_loopback(self.host) and not self.token and not self.insecure:
            raise UniadError(
                f"--host {self.host} is reachable from the network: give --token SECRET (or "
                "UNIAD_EDGE_TOKEN) so every request must carry it, or --insecure to serve "
                "without one"
            )
        if self.token is not None and len(self.token) < 8:
            raise UniadError("--token must be at least 8 characters long")
        if not 0 < self.port < 65536:
            raise UniadError(f"--port must be 1..65535, got {self.port}")
        if not self.max_upload_mb > 0:
            raise UniadError(f"--max-upload-mb must be > 0, got {self.max_upload_mb}")
        if self.queue_size < 1 or self.max_batch < 1:
            raise UniadError("--queue-size and --max-batch must be >= 1")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise UniadError("HTTPS needs both --tls-cert and --tls-key (PEM files)")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not Path(path).is_file():
                raise UniadError(f"TLS file {path} not found; give a PEM certificate and key")
        if not self.mjpeg_fps > 0:
            raise UniadError(f"--mjpeg-fps must be > 0, got {self.mjpeg_fps}")
        return replace(self, providers=tuple(self.providers) if self.providers else None)

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert is not None else "http"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
