"""The inspection station: cameras, one batched scoring loop, triggers, counters and its report.

`Station`, `StationConfig`, `CameraConfig` and `StationSummary` are the embedding API, importable
from here; the station's own modules import each other by their module paths.
"""

from .config import CameraConfig, StationConfig
from .core import Station
from .stats import StationSummary

__all__ = ["CameraConfig", "Station", "StationConfig", "StationSummary"]
