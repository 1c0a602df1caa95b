"""The cameras' routes: their state, newest verdict and frame, a live MJPEG overlay, and a
trigger that scores the next frame."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..errors import UniadError
from .cameras import StationCamera, encode_jpeg
from .query import part_id_query
from .service import ScoringService

MJPEG_REPEAT_S = 5.0


def add_camera_routes(
    app: FastAPI, service: ScoringService, api: list[Any], media: list[Any]
) -> None:
    """`/v1/cameras/...`: JSON behind `api`, images behind `media` (the token in the URL too,
    for an <img> tag)."""

    def camera(name: str) -> StationCamera:
        if name not in service.cameras:
            known = ", ".join(service.cameras) or "none (serving without --source)"
            raise HTTPException(404, f"no camera {name!r}; cameras: {known}")
        return service.cameras[name]

    @app.get("/v1/cameras", dependencies=api, summary="Cameras and their state")
    async def cameras() -> dict[str, Any]:
        return {"cameras": [cam.info() for cam in service.cameras.values()]}

    @app.get("/v1/cameras/{name}/latest", dependencies=api, summary="Newest verdict of a camera")
    async def latest(name: str) -> dict[str, Any]:
        found = camera(name).latest()
        if found is None:
            raise HTTPException(404, f"camera {name!r} has no frame yet")
        image, event, _ = found
        return {"camera": name, "frame_size": list(image.shape[:2]), "verdict": event}

    @app.get("/v1/cameras/{name}/latest.jpg", dependencies=media, summary="Newest frame (overlay)")
    async def latest_jpeg(name: str, overlay: bool = True) -> Response:
        found = camera(name).latest()
        if found is None:
            raise HTTPException(404, f"camera {name!r} has no frame yet")
        jpeg = await run_in_threadpool(_render, found, overlay)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/v1/cameras/{name}/stream.mjpg", dependencies=media, summary="Live overlay (MJPEG)")
    async def mjpeg(name: str) -> StreamingResponse:
        cam = camera(name)
        interval = 1.0 / service.config.mjpeg_fps
        return StreamingResponse(
            _mjpeg_frames(service, cam, interval),
            media_type="multipart/x-mixed-replace; boundary=frame",
            headers={"Cache-Control": "no-store"},
        )

    @app.post("/v1/cameras/{name}/trigger", dependencies=api, summary="Score the newest frame")
    async def trigger(name: str, part_id: str | None = Depends(part_id_query)) -> Any:
        cam = camera(name)
        try:
            return await run_in_threadpool(cam.trigger, part_id)
        except UniadError as exc:  # the camera has ended, or the station is stopping
            raise HTTPException(409, str(exc)) from None
        except TimeoutError:
            raise HTTPException(504, f"camera {name!r} gave no frame in time") from None


def _render(found: tuple[Any, Any, Any], overlay: bool) -> bytes:
    image, _, detection = found
    return encode_jpeg(detection.overlay(image) if overlay and detection is not None else image)


async def _mjpeg_frames(
    service: ScoringService, cam: StationCamera, interval: float
) -> AsyncIterator[bytes]:
    """A part per new verdict, at most one per `interval`; ends when the server stops.

    Browsers draw a part only once the next one begins, so each frame is sent a second time
    on the next tick, and again every `MJPEG_REPEAT_S` while nothing new arrives (this also
    notices a client that went away).
    """
    shown, jpeg, sent_at, repeats = None, b"", 0.0, 0
    while not service.stopping.is_set():
        found = cam.latest()
        if found is not None and found[1] is not None and found[1]["seq"] != shown:
            shown = found[1]["seq"]
            jpeg = await run_in_threadpool(_render, found, True)
            repeats = 1
        elif jpeg and (repeats or time.monotonic() - sent_at >= MJPEG_REPEAT_S):
            repeats = 0
        else:
            await asyncio.sleep(interval)
            continue
        sent_at = time.monotonic()
        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
        yield head.encode() + jpeg + b"\r\n"
        await asyncio.sleep(interval)
