"""`--station station.toml`: a station's cameras and outputs in one file.

name = "line1"
model = "export/model.onnx"          # paths are relative to the file's folder
# thresholds = "line1.json"          # default export/model.onnx.thresholds.json (a URL needs one)
log = "runs/line1.jsonl"
save_dir = "runs/ng"
mqtt = "mqtt://127.0.0.1:1883/line1/verdicts"
trigger = "mqtt://127.0.0.1:1883/line1/trigger"   # or "stdin"; omit to free-run

[cameras.top]
source = "rtsp://10.0.0.5/stream"    # or gige://DEVICE?exposure=5000 (a GenICam camera)
class_name = "bottle"
threshold = 0.8                      # raw score, overrides the model's
roi = [0, 40, 640, 400]              # x, y, width, height
save = "ng"                          # ng | all | none

[cameras.side]
source = "gige://Basler-21234567"
[cameras.side.genicam]               # its GenICam settings (or in the URL's query)
exposure = 5000                      # µs; also gain, pixel_format, roi, fps, trigger, ...

[opcua]                              # an OPC UA server for PLCs (pip install 'uniad-edge[opcua]')
url = "opc.tcp://127.0.0.1:4840/uniad"
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ...errors import UniadError
from ..capture.gige import with_settings
from ..opcua.config import OpcuaConfig
from .config import CameraConfig, StationConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PATH_KEYS = ("model", "thresholds", "log", "save_dir")
CAMERA_KEYS = set(CameraConfig.__dataclass_fields__) - {"name"}
STATION_KEYS = set(StationConfig.__dataclass_fields__) - {"cameras"}


def load_station_file(path: str | Path, **overrides: Any) -> StationConfig:
    """Read a station TOML file; `overrides` (not None) replace its top-level settings and an
    override `cameras` list is added to its cameras."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UniadError(f"station file {path} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UniadError(f"station file {path} is not valid TOML: {exc}") from None
    cameras_table = data.pop("cameras", {})
    if not isinstance(cameras_table, dict):
        raise UniadError(
            f"station file {path}: cameras must be [cameras.NAME] tables, got {cameras_table!r}"
        )
    unknown = set(data) - STATION_KEYS
    if unknown:
        raise UniadError(
            f"station file {path}: unknown settings {', '.join(sorted(unknown))}; known: "
            f"{', '.join(sorted(STATION_KEYS))}"
        )
    for key in PATH_KEYS:  # a Triton URL is not a path; a non-string is refused below
        if isinstance(data.get(key), str) and "://" not in data[key]:
            data[key] = (path.parent / Path(data[key]).expanduser()).resolve()
    try:
        if "opcua" in data:
            data["opcua"] = _opcua(path, data["opcua"])
        cameras = [_camera(path, name, table) for name, table in cameras_table.items()]
        extra = overrides.pop("cameras", None) or []
        data |= {k: v for k, v in overrides.items() if v is not None}
        return StationConfig(cameras=cameras + list(extra), **data)
    except UniadError as exc:
        raise UniadError(f"station file {path}: {exc}") from None


def _opcua(path: Path, table: Any) -> OpcuaConfig:
    """`[opcua]`: url, user, password, cert, key (files relative to the station file)."""
    known = set(OpcuaConfig.__dataclass_fields__)
    if not isinstance(table, dict) or "url" not in table or set(table) - known:
        raise UniadError(f"[opcua] needs url and may have {', '.join(sorted(known))}")
    files = {
        k: (path.parent / Path(table[k]).expanduser()).resolve()
        for k in ("cert", "key")
        if k in table
    }
    return OpcuaConfig(**{**table, **files})


def _camera(path: Path, name: str, table: Any) -> CameraConfig:
    if not isinstance(table, dict) or "source" not in table:
        raise UniadError(f"[cameras.{name}] needs a source")
    if "genicam" in table:  # a gige:// camera's settings as a table instead of a URL query
        table = dict(table)
        table["source"] = with_settings(table["source"], table.pop("genicam"), f"[cameras.{name}]")
    unknown = set(table) - CAMERA_KEYS
    if unknown:
        raise UniadError(
            f"[cameras.{name}] has unknown keys {', '.join(sorted(unknown))}"
            f"; known: {', '.join(sorted(CAMERA_KEYS))}"
        )
    source = table["source"]
    if (
        isinstance(source, str)
        and not source.isdigit()
        and "://" not in source
        and "!" not in source
    ):
        candidate = path.parent / Path(source).expanduser()
        if not Path(source).expanduser().is_absolute():
            source = str(candidate)
    return CameraConfig(name=name, **{**table, "source": source})
