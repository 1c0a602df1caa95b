"""What a station is made of: its cameras and its settings. Every default lives here; the CLI
and the station file pass only what the user gave, and every value is checked here, once, for
its type and range (a one-line error naming the setting)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ...errors import UniadError
from ...metadata import DEFAULT_MAX_BATCH, check_threshold
from ..capture import AUTO, FOREVER, Reader
from ..mqtt_url import parse_mqtt_url
from ..opcua.config import OpcuaConfig
from ..retention import parse_retention
from .triggers import trigger_kind

# The camera name under which the HTTP API's requests are counted: reserved, so no camera takes it.
API_CAMERA = "api"
API_SOURCE = "api request"

SAVE_POLICIES = ("ng", "all", "none")
# No "/" (a URL path segment), no "." (OPC UA node ids are Cameras.NAME.Variable: "top.Score"
# would collide with camera top's Score), nothing a file name or a header must escape.
CAMERA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
CAMERA_NAME_RULE = "1 to 64 letters, digits, '-' or '_'"
RECONNECT_WORDS = {"forever": FOREVER, "auto": AUTO}

# What each setting may hold (a station file is TOML, so paths arrive as strings).
NUMBER = (int, float)
PATH = (str, Path)
CAMERA_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "source": (str, int, Reader),
    "class_name": (str,),
    "threshold": NUMBER,
    "roi": (list, tuple),
    "save": (str,),
}
STATION_TYPES: dict[str, tuple[type, ...]] = {
    "cameras": (list,),
    "name": (str,),
    "model": PATH,
    "backend": (str,),
    "providers": (list, tuple),
    "threads": (int,),
    "bit_depth": (int,),
    "max_batch": (int,),
    "trigger_only": (bool,),
    "trigger": (str,),
    "log": PATH,
    "save_dir": PATH,
    "log_max_mb": NUMBER,
    "log_keep": (int,),
    "keep_evidence": (str, int),
    "mqtt": (str,),
    "mqtt_buffer": (int,),
    "mqtt_drain_s": NUMBER,
    "show": (bool,),
    "max_frames": (int,),
    "reconnect_tries": (int, str),
    "reconnect_wait": NUMBER,
    "reconnect_max_wait": NUMBER,
    "write_retry_s": NUMBER,
    "opcua": (OpcuaConfig,),
    "api_queue": (int,),
    "api_class_name": (str,),
    "thresholds": PATH,
    "api_threshold": NUMBER,
}
NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def check_types(
    obj: Any,
    types: dict[str, tuple[type, ...]],
    where: str,
    finite_checked: frozenset[str] | set[str] = frozenset(),
) -> None:
    """Refuse a setting of the wrong type (None means "not set" everywhere): `max_batch = "8"`
    is a one-line error naming the key, not a traceback later. Fields in `finite_checked` have
    their own rule for inf and NaN (with its own fix in the message)."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        allowed = types[f.name]
        if value is None:
            continue
        wrong = not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)
        if isinstance(value, float) and not math.isfinite(value) and f.name not in finite_checked:
            wrong = True
        if wrong:
            expected = " or ".join(NAMES.get(t, "a " + t.__name__.lower()) for t in allowed)
            raise UniadError(f"{where}{f.name} must be {expected}, got {value!r}")


def reconnect_policy(value: int | str | None) -> int | str | None:
    """`reconnect_tries` as the capture stream takes it: a count, FOREVER or AUTO (a local
    camera index gives up after seconds, a URL waits for ever). Accepts "forever", "auto" and
    a number, as a string (the CLI, a station file) or an int."""
    if value is None or value == AUTO:
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in RECONNECT_WORDS:
            return RECONNECT_WORDS[text]
        if not text.isdigit():
            raise UniadError(
                f"reconnect_tries must be a number, 'forever' or 'auto', got {value!r}"
            )
        value = int(text)
    if value < 0:
        raise UniadError(f"reconnect_tries must be >= 0, 'forever' or 'auto', got {value}")
    return value


def check_output_path(path: Path | str | None, key: str) -> None:
    """An output path whose parent is a file can never be created: say so, not "File exists"."""
    if path is None or "://" in str(path):
        return
    for parent in Path(path).expanduser().parents:
        if parent.exists():
            if not parent.is_dir():
                raise UniadError(f"cannot write {key} {path}: {parent} is a file, not a folder")
            return


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
        check_types(self, CAMERA_TYPES, f"camera {self.name}: ", finite_checked={"threshold"})
        if self.threshold is not None:
            try:
                check_threshold(self.threshold, f"camera {self.name}: threshold")
            except ValueError as exc:
                raise UniadError(str(exc)) from None
        if not CAMERA_NAME.fullmatch(self.name):
            raise UniadError(
                f"camera name {self.name[:80]!r} is not allowed: use {CAMERA_NAME_RULE} (a name "
                "is a URL path segment, an OPC UA node name and part of file names)"
            )
        if self.save not in SAVE_POLICIES:
            raise UniadError(
                f"camera {self.name}: save must be one of {', '.join(SAVE_POLICIES)}, "
                f"got {self.save!r}"
            )
        if self.roi is not None:
            roi = self.roi
            if (
                len(roi) != 4
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in roi)
                or roi[0] < 0
                or roi[1] < 0
                or roi[2] < 1
                or roi[3] < 1
            ):
                raise UniadError(
                    f"camera {self.name}: roi must be [x, y, width, height] (integers) with "
                    f"x, y >= 0 and width, height >= 1, got {list(roi)}"
                )
            self.roi = tuple(roi)  # type: ignore[assignment]


@dataclass
class StationConfig:
    """Everything a station needs; every default lives here (the CLI passes None through).
    `cameras` may be empty for a service that scores only API requests (`serve` without
    cameras); `run` needs at least one."""

    cameras: list[CameraConfig] = field(default_factory=list)
    name: str = "station"
    model: Path | str | None = None  # a file, or a Triton URL (grpc://host:8001/uniad)
    thresholds: Path | None = None  # the line's thresholds file (default: beside the model file)
    backend: str = "auto"
    providers: list[str] | None = None
    threads: int | None = None
    bit_depth: int | None = None
    max_batch: int = DEFAULT_MAX_BATCH
    trigger_only: bool = False
    trigger: str | None = None  # "stdin" or mqtt://host:port/topic: where triggers come from
    log: Path | None = None
    save_dir: Path | None = None
    log_max_mb: float | None = None  # rotate the log at this size (None: never; logrotate)
    log_keep: int = 5  # rotated logs kept (log.jsonl.1 ... .N)
    keep_evidence: str | int | None = None  # e.g. 5000, "30d", "20GB" (None: keep all)
    mqtt: str | None = None
    mqtt_buffer: int = 1000
    mqtt_drain_s: float = 10.0  # at the end, how long unacknowledged verdicts may take to go
    opcua: OpcuaConfig | None = None  # an OPC UA server for PLCs (the [opcua] extra)
    show: bool = False
    max_frames: int | None = None
    # live sources only (files never reconnect): a count, FOREVER, or AUTO: a camera index
    # gives up after seconds (a typo, mostly), a URL or pipeline waits for ever
    reconnect_tries: int | str | None = AUTO
    reconnect_wait: float = 0.5
    reconnect_max_wait: float = 8.0
    write_retry_s: float = 10.0
    api_queue: int = 0  # > 0: also score API requests (camera "api"), up to this many waiting
    api_class_name: str | None = None  # an API request's class when it names none
    api_threshold: float | None = None  # an API request's threshold when it names no class

    def __post_init__(self) -> None:
        check_types(self, STATION_TYPES, "")
        if not all(isinstance(c, CameraConfig) for c in self.cameras):
            raise UniadError("cameras must be a table of [cameras.NAME] sections")
        names = [c.name for c in self.cameras]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise UniadError(f"camera names must be unique; repeated: {', '.join(twice)}")
        if self.api_queue > 0 and API_CAMERA in names:
            raise UniadError(
                f"camera name {API_CAMERA!r} is taken by the HTTP API's requests; rename the camera"
            )
        if self.max_batch < 1:
            raise UniadError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.max_frames is not None and self.max_frames < 1:
            raise UniadError(
                f"max_frames must be >= 1 (leave it out to run on), got {self.max_frames}"
            )
        self.reconnect_tries = reconnect_policy(self.reconnect_tries)
        if self.reconnect_max_wait <= 0 or self.write_retry_s <= 0:
            raise UniadError("reconnect max wait and write retry interval must be > 0 seconds")
        for key in ("log", "save_dir"):
            check_output_path(getattr(self, key), key)
        if (self.log_max_mb is not None and self.log_max_mb <= 0) or self.log_keep < 1:
            raise UniadError("log_max_mb must be > 0 and log_keep >= 1")
        if self.keep_evidence is not None:
            parse_retention(str(self.keep_evidence))  # a typo fails now, not at the first NG
        if self.mqtt is not None:
            parse_mqtt_url(self.mqtt)  # a typo fails now, not after the model has loaded
        if self.trigger is not None:
            if trigger_kind(self.trigger) == "mqtt":
                parse_mqtt_url(self.trigger)
            self.trigger_only = True

    def require_cameras(self) -> StationConfig:
        """This config, or the error `run` gives for a station without cameras."""
        if not self.cameras:
            raise UniadError(
                "a station needs at least one camera (--camera, --source or [cameras.NAME] in "
                "--station)"
            )
        return self
