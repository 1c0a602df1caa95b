"""`POST /v1/score`: one image (its bytes) or several (multipart), scored by the station with
the cameras' frames in the same batches; the answer as JSON, or the overlay as PNG."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any
from urllib.parse import quote

import cv2
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..errors import UniadError
from ..runtime.detector import Detection
from ..runtime.station.requests import QueueFull
from .query import part_id_query
from .service import ScoringService
from .uploads import body_kind, check_fits, check_pixels, decode_image

HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
MAX_FILES = 64


def add_score_routes(app: FastAPI, service: ScoringService, api: list[Any]) -> None:
    """The scoring route of `service`, behind the `api` dependencies (the token)."""
    config = service.config

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
