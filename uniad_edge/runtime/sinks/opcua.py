"""OPC UA sink: each verdict becomes the camera's variables on the station's OPC UA server.

The server (`runtime/opcua/server.py`, asyncua) runs on its own thread; `emit` only hands the
values over, so a slow or vanished OPC UA client never holds up the output thread or scoring.
The server starts (or fails in one line) when the station is built, before any camera opens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..opcua.values import VerdictCounts, camera_values, verdict_kind
from .base import Sink, Verdict

if TYPE_CHECKING:
    from ..opcua.server import OpcuaServer
    from ..station.core import Station


class OpcuaSink(Sink):
    name = "opcua"

    def __init__(self, server: OpcuaServer) -> None:
        self.server = server
        self.counts = {camera: VerdictCounts() for camera in server.cameras}

    def emit(self, verdict: Verdict) -> None:
        counts = self.counts[verdict.camera]
        counts.add(verdict_kind(verdict.record))
        self.server.publish(verdict.camera, camera_values(verdict.record, counts))

    def model_changed(self, model_id: str, provenance: str) -> None:
        self.server.set_station(ModelId=model_id, ThresholdProvenance=provenance)

    def close(self) -> None:
        self.server.close()

    def summary(self) -> dict[str, int]:
        return self.server.summary()


def from_station(station: Station) -> OpcuaSink | None:
    config = station.config.opcua
    if config is None:
        return None
    from ..opcua.server import OpcuaServer

    server = OpcuaServer(
        config,
        station.config.name,
        list(station.cameras),
        trigger=station.trigger_async,
        states=lambda: {name: state.status for name, state in station.states().items()},
        model_id=station.model_id,
        provenance=station.threshold_provenance,
    )
    return OpcuaSink(server.start())
