"""Result sinks: where each verdict goes. A new sink is one module here plus one table entry.

Each entry's `from_station(station)` returns its sink, or None when the station's config does
not ask for it. Sinks run in table order on the station's output thread: evidence images are on
disk before the log line and the MQTT message that announce them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import callback, display, images, jsonl, mqtt, opcua
from .base import PauseOnError, Sink, Verdict

if TYPE_CHECKING:
    from ..station.core import Station

SINKS: dict[str, Callable[[Station], Sink | None]] = {
    "images": images.from_station,
    "jsonl": jsonl.from_station,
    "mqtt": mqtt.from_station,
    "opcua": opcua.from_station,
    "display": display.from_station,
    "callback": callback.from_station,
}

__all__ = ["SINKS", "PauseOnError", "Sink", "Verdict"]
