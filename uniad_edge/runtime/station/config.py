"""What a station is made of: its cameras and its settings. Every default lives here; the CLI
and the station file pass only what the user gave."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...errors import UniadError
from ...metadata import DEFAULT_MAX_BATCH
from ..capture import FOREVER, Reader
from ..mqtt_url import parse_mqtt_url
from .triggers import trigger_kind

SAVE_POLICIES = ("ng", "all", "none")


@dataclass
class CameraConfig:
    """One camera of the station. `source` is a camera index, file, folder, glob, URL or
    GStreamer pipeline (as `--source`), or a `Reader` object; `roi` is (x, y, width, height) in
    frame pixels, cropped before scoring; `save` is which frames the evidence sink keeps."""

    name: str
    source: str | int | Reader
    class_name: str | None = None
    threshold: float | None = None
    roi: tuple[int, int, int, int] | None = None
    save: str = "ng"

    def __post_init__(self) -> None:
        if not self.name or any(ch.isspace() for ch in self.name):
            raise UniadError(f"camera name {self.name!r} must be non-empty and without spaces")
        if self.save not in SAVE_POLICIES:
            raise UniadError(
                f"camera {self.name}: save must be one of {', '.join(SAVE_POLICIES)}, "
                f"got {self.save!r}"
            )
        if self.roi is not None:
            roi = tuple(int(v) for v in self.roi)
            if len(roi) != 4 or roi[0] < 0 or roi[1] < 0 or roi[2] < 1 or roi[3] < 1:
                raise UniadError(
                    f"camera {self.name}: roi must be [x, y, width, height] with x, y >= 0 and "
                    f"width, height >= 1, got {list(self.roi)}"
                )
            self.roi = roi  # type: ignore[assignment]


@dataclass
class StationConfig:
    """Everything a station needs; every default lives here (the CLI passes None through)."""

    cameras: list[CameraConfig] = field(default_factory=list)
    name: str = "station"
    model: Path | str | None = None  # a file, or a Triton URL (grpc://host:8001/uniad)
    backend: str = "auto"
    providers: list[str] | None = None
    threads: int | None = None
    bit_depth: int | None = None
    max_batch: int = DEFAULT_MAX_BATCH
    trigger_only: bool = False
    trigger: str | None = None  # "stdin" or mqtt://host:port/topic: where triggers come from
    log: Path | None = None
    save_dir: Path | None = None
    mqtt: str | None = None
    mqtt_buffer: int = 1000
    mqtt_drain_s: float = 10.0  # at the end, how long unacknowledged verdicts may take to go
    show: bool = False
    max_frames: int | None = None
    reconnect_tries: int | None = FOREVER  # live sources only; files never reconnect
    reconnect_wait: float = 0.5
    reconnect_max_wait: float = 8.0
    write_retry_s: float = 10.0
    api_queue: int = 0  # > 0: also score API requests (camera "api"), up to this many waiting

    def __post_init__(self) -> None:
        if not self.cameras and not self.api_queue:
            raise UniadError(
                "a station needs at least one camera (--camera, --source or --station)"
            )
        names = [c.name for c in self.cameras]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise UniadError(f"camera names must be unique; repeated: {', '.join(twice)}")
        if self.max_batch < 1:
            raise UniadError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.reconnect_tries is not None and self.reconnect_tries < 0:
            raise UniadError(f"reconnect tries must be >= 0 or forever, got {self.reconnect_tries}")
        if self.reconnect_max_wait <= 0 or self.write_retry_s <= 0:
            raise UniadError("reconnect max wait and write retry interval must be > 0 seconds")
        if self.mqtt is not None:
            parse_mqtt_url(self.mqtt)  # a typo fails now, not after the model has loaded
        if self.trigger is not None:
            if trigger_kind(self.trigger) == "mqtt":
                parse_mqtt_url(self.trigger)
            self.trigger_only = True
