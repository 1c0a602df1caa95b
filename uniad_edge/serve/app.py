"""The FastAPI application: scoring API, cameras, health, model, events, gallery, metrics and
the dashboard page. Handlers stay thin; the work is in `ScoringService` and the cameras.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from .. import __version__
from ..errors import UniadError
from ..hosts import is_loopback
from ..runtime.detector import Detection
from ..runtime.part_id import check_part_id
from ..runtime.station.requests import QueueFull
from .auth import HostGuard, TokenGuard
from .cameras import StationCamera, encode_jpeg
from .config import ModelSourceRefused, ServeConfig
from .docs import add_docs
from .headers import SecurityHeaders
from .methods import HeadAndOptions
from .metrics import CONTENT_TYPE
from .origin import OriginGuard, media_type
from .service import ScoringService, SwapInProgress
from .thresholds import USAGE as THRESHOLDS_USAGE
from .thresholds import ThresholdsRefused
from .uploads import (
    BodyLimit,
    TooLarge,
    UnsupportedMediaType,
    body_kind,
    check_fits,
    check_pixels,
    decode_image,
)

STATIC = Path(__file__).parent / "static"
HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
MAX_FILES = 64
RETRY_AFTER_S = 1
KEEPALIVE_S = 15.0
MJPEG_REPEAT_S = 5.0
JSON = "application/json"


def create_app(service: ScoringService) -> FastAPI:
    """The ASGI app serving `service`; the caller owns the service's lifetime."""
    config = service.config
    app = FastAPI(
        title="uniad-edge serve",
        version=__version__,
        description="UniAD anomaly scoring: HTTP API, cameras, live dashboard, metrics.",
        docs_url=None,  # served by `add_docs`: behind the token, assets from a package
        redoc_url=None,
        openapi_url=None,
    )
    app.state.service = service
    app.add_middleware(BodyLimit, max_bytes=config.max_upload_bytes)
    app.add_middleware(HeadAndOptions, routes=app.router.routes)
    app.add_middleware(OriginGuard)  # a write another site's page sent: before anything reads
    app.add_middleware(HostGuard, names=config.host_names)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, refusals included
    guard = TokenGuard(config.token)
    api = [Depends(guard.header)]
    media = [Depends(guard.header_or_query)]
    add_docs(app, media)

    @app.exception_handler(UniadError)
    async def _bad_input(_: Request, exc: UniadError) -> JSONResponse:
        if isinstance(exc, QueueFull):
            service.metrics.rejected.inc()
            return JSONResponse(
                {"detail": f"{exc}; retry shortly"},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        status = {UnsupportedMediaType: 415, TooLarge: 413}.get(type(exc), 400)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, 500)

    def camera(name: str) -> StationCamera:
        if name not in service.cameras:
            known = ", ".join(service.cameras) or "none (serving without --source)"
            raise HTTPException(404, f"no camera {name!r}; cameras: {known}")
        return service.cameras[name]

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.post("/v1/score", dependencies=api, summary="Score one image, or several (multipart)")
    async def score(
        request: Request,
        class_name: str | None = Query(None, description="use this class's threshold"),
        heatmap: bool = Query(False, description="add the overlay (PNG) to the answer"),
        part_id: str | None = Depends(part_id_query),
        bit_depth: int | None = Query(None, ge=9, le=16, description="bits of a 16-bit image"),
    ) -> Response:
        started = time.time()
        uploads = await _read_uploads(request)
        check_fits(len(uploads), config.queue_size)  # 413: can never fit
        service.station.api_threshold(class_name)  # unknown class: 400 before any work
        for name, data in uploads:  # every header before any pixels
            check_pixels(data, name or "request body", config.max_pixels)
        waiting = service.station.requests
        if waiting is not None and waiting.depth + len(uploads) > waiting.size:
            raise QueueFull(f"scoring queue full: no room for {len(uploads)} more images")
        futures = []
        try:
            for name, data in uploads:  # one part decoded at a time, queued as it comes
                image = await run_in_threadpool(
                    decode_image, data, name or "request body", bit_depth
                )
                futures.append(
                    service.station.score_async(
                        image, class_name=class_name, part_id=part_id, name=name
                    )
                )
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        verdicts = [await asyncio.wrap_future(f) for f in futures]
        answers = []
        for (name, _), verdict in zip(uploads, verdicts, strict=True):
            answer = service.answer(verdict, started)
            if name is not None:
                answer["filename"] = name
            detection, image = verdict.detection, verdict.image
            if heatmap and detection is not None and image is not None:
                png = await run_in_threadpool(_overlay_png, image, detection)
                if _wants_png(request) and len(uploads) == 1 and name is None:
                    return Response(png, media_type="image/png", headers=_score_headers(answer))
                answer["heatmap_png"] = base64.b64encode(png).decode()
            answers.append(answer)
        if len(answers) == 1 and uploads[0][0] is None:
            return JSONResponse(answers[0])
        return JSONResponse({"results": answers})

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

    @app.get("/v1/health", dependencies=api, summary="Model loaded, each camera's state")
    async def health() -> JSONResponse:
        body = service.health()
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get("/v1/model", dependencies=api, summary="Model metadata and thresholds in use")
    async def model() -> dict[str, Any]:
        return service.model_info()

    @app.post("/v1/model", dependencies=api, summary="Swap in another model without stopping")
    async def swap_model(request: Request) -> dict[str, Any]:
        # `config` is the one serve started with: a swap moves the model, not the model folders
        usage = 'send JSON {"path": "export/model.onnx"}'
        body = await _line_change(request, config, "/v1/model", usage)
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            raise HTTPException(422, usage)
        try:
            config.check_model_source(body["path"])
        except ModelSourceRefused as exc:
            raise HTTPException(403, str(exc)) from None
        try:
            return await run_in_threadpool(service.swap_model, body["path"])
        except SwapInProgress as exc:
            raise HTTPException(409, str(exc)) from None
        except UniadError as exc:
            reason = f"model not swapped, the running one keeps scoring: {exc}"
            raise HTTPException(422, reason) from None

    @app.post("/v1/thresholds", dependencies=api, summary="Set or roll back the line's thresholds")
    async def set_thresholds(request: Request) -> dict[str, Any]:
        body = await _line_change(request, config, "/v1/thresholds", THRESHOLDS_USAGE)
        try:
            return await run_in_threadpool(service.set_thresholds, body)
        except ThresholdsRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        except UniadError as exc:
            raise HTTPException(409, f"thresholds not changed: {exc}") from None

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

    return app


async def _line_change(request: Request, config: ServeConfig, path: str, usage: str) -> Any:
    """The JSON body of a request that changes what the line decides with (the model, its
    thresholds): off loopback only with a token, only as `application/json` (None when it is
    not JSON, for the caller's 422 with `usage`)."""
    if config.token is None and not is_loopback(config.host):
        raise HTTPException(403, f"POST {path} off loopback needs serve --token")
    if media_type(request.headers.get("content-type")) != JSON:
        raise HTTPException(415, f"send Content-Type: {JSON}; {usage}")
    try:
        return await request.json()
    except ValueError:
        raise HTTPException(422, usage) from None


async def _read_uploads(request: Request) -> list[tuple[str | None, bytes]]:
    """(file name or None, bytes) per image in the body."""
    if body_kind(request.headers.get("content-type")) == "image":
        return [(None, await request.body())]
    form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
    uploads = [
        (value.filename or key, await value.read())
        for key, value in form.multi_items()
        if isinstance(value, UploadFile)
    ]
    await form.close()
    if not uploads:
        raise UniadError("multipart body has no file part; send each image as a file field")
    return uploads


def part_id_query(
    part_id: str | None = Query(None, description="printable text, at most 200 characters"),
) -> str | None:
    """`?part_id=` under the one part-id rule: refused (422) before anything is scored."""
    try:
        return check_part_id(part_id)
    except UniadError as exc:
        raise HTTPException(422, str(exc)) from None


def _wants_png(request: Request) -> bool:
    return "image/png" in request.headers.get("accept", "")


def _score_headers(answer: dict[str, Any]) -> dict[str, str]:
    return {
        f"X-{k.replace('_', '-').title()}": header_value(str(v))
        for k, v in answer.items()
        if v is not None
    }


def header_value(text: str) -> str:
    """`text` as a safe HTTP header value: printable ASCII stays, everything else (non-ASCII,
    control characters) and `%` are percent-encoded UTF-8, so no value can break a header."""
    return quote(text, safe=HEADER_SAFE)


def _overlay_png(image: Any, detection: Detection) -> bytes:
    ok, data = cv2.imencode(".png", detection.overlay(image))
    if not ok:
        raise UniadError("OpenCV could not encode the overlay as PNG")
    return data.tobytes()


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
