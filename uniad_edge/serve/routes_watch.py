"""What people and monitoring watch: verdicts as Server-Sent Events, the NG gallery and the
Prometheus metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, Response, StreamingResponse

from .metrics import CONTENT_TYPE
from .service import ScoringService

KEEPALIVE_S = 15.0


def add_watch_routes(
    app: FastAPI, service: ScoringService, api: list[Any], media: list[Any]
) -> None:
    """`/v1/events`, `/v1/gallery` and `/metrics` of `service`."""

    @app.get("/v1/events", dependencies=media, summary="Verdicts as Server-Sent Events")
    async def events() -> StreamingResponse:
        return StreamingResponse(
            _sse(service),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.get("/v1/gallery", dependencies=api, summary="The newest NG images")
    async def gallery() -> dict[str, Any]:
        items = service.gallery.recent() if service.gallery is not None else []
        return {"enabled": service.gallery is not None, "items": items}

    @app.get("/v1/gallery/{path:path}", dependencies=media, summary="One saved NG image")
    async def gallery_file(path: str) -> FileResponse:
        found = service.gallery.resolve(path) if service.gallery is not None else None
        if found is None:
            raise HTTPException(404, "no such image in the NG folder")
        return FileResponse(found)

    @app.get("/metrics", dependencies=api, summary="Prometheus metrics")
    async def metrics() -> Response:
        service.metrics.queue_depth.set(service.queue_depth)
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)


def _sse_message(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


async def _sse(service: ScoringService) -> AsyncIterator[bytes]:
    """A snapshot first, then one `verdict` event per verdict; ends when the server stops."""
    subscriber = service.hub.subscribe()
    try:
        yield _sse_message("snapshot", service.hub.snapshot())
        idle = 0.0
        while not service.stopping.is_set():
            try:
                event = await asyncio.wait_for(subscriber.get(), timeout=1.0)
            except asyncio.TimeoutError:
                idle += 1.0
                if idle >= KEEPALIVE_S:
                    idle = 0.0
                    yield b": keepalive\n\n"
                continue
            if event is None:
                return
            idle = 0.0
            yield _sse_message("verdict", event)
    finally:
        service.hub.unsubscribe(subscriber)
