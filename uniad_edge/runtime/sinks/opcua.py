"""OPC UA sink: each verdict becomes the camera's variables on the station's OPC UA server.

The server (`runtime/opcua/server.py`, asyncua) runs on its own thread; `emit` only hands the
values over, so a slow or vanished OPC UA client never holds up the output thread or scoring.
The server starts (or fails in one line) when the station is built, before any camera opens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..opcua.values import camera_values
from .base import Sink, SinkContext, Verdict

if TYPE_CHECKING:
    from ..opcua.server import OpcuaServer


class OpcuaSink(Sink):
    name = "opcua"

    def __init__(self, server: OpcuaServer) -> None:
        self.server = server

    def emit(self, verdict: Verdict) -> None:
        self.server.publish(verdict.camera, camera_values(verdict.record, verdict.counts))

    def close(self) -> None:
        self.server.close()

    def summary(self) -> dict[str, int]:
        return self.server.summary()


def from_context(context: SinkContext) -> OpcuaSink | None:
    config = context.config.opcua
    if config is None:
        return None
    from ..opcua.server import OpcuaServer

    server = OpcuaServer(
        config,
        context.config.name,
        context.cameras,
        trigger=context.trigger,
        states=lambda: {name: c["status"] for name, c in context.counters().items()},
        model_id=context.model_id,
        provenance=context.threshold_provenance,
    )
    return OpcuaSink(server.start())
