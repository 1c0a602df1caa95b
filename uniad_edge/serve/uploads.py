"""Request bodies -> BGR images: size cap, content types, and one-line reasons for refusals."""

from __future__ import annotations

import json

import cv2
import numpy as np
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import UniadError
from ..runtime.frames import to_bgr8

IMAGE_TYPES = ("image/", "application/octet-stream")
MULTIPART = "multipart/form-data"


class UnsupportedMediaType(UniadError):
    """A body that is neither an encoded image nor multipart form data (HTTP 415)."""


def decode_image(
    data: bytes, name: str = "request body", bit_depth: int | None = None
) -> np.ndarray:
    """An encoded image (PNG, JPEG, BMP, TIFF, WebP, ...) -> uint8 BGR, or a `UniadError`.

    A 16-bit file (10- and 12-bit sensors store their pixels in 16-bit PNG/TIFF) needs the
    sensor's `bit_depth`: mapping it to 8 bits by its top byte, as OpenCV would, turns a 12-bit
    image nearly black and its score silently wrong.
    """
    if not data:
        raise UniadError(f"{name} is empty; send an encoded image (PNG, JPEG, BMP, TIFF)")
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None or image.dtype not in (np.uint8, np.uint16):
        raise UniadError(
            f"{name} ({len(data)} bytes) is not an 8- or 16-bit image OpenCV can decode; send "
            "PNG, JPEG, BMP, TIFF or WebP"
        )
    if image.dtype == np.uint16 and bit_depth is None:
        raise UniadError(
            f"{name} is a 16-bit image: add ?bit_depth=N with the bits the sensor uses "
            "(e.g. 12; 16 for full-range), or send an 8-bit image"
        )
    return to_bgr8(image, bit_depth)


def body_kind(content_type: str | None) -> str:
    """'image' or 'multipart' for a scoring request's Content-Type, else 415."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == MULTIPART:
        return "multipart"
    if media.startswith(IMAGE_TYPES[0]) or media == IMAGE_TYPES[1]:
        return "image"
    raise UnsupportedMediaType(
        f"Content-Type {media or '(none)'} is not supported; send image/png, image/jpeg, ... "
        "or multipart/form-data with one file part per image"
    )


class BodyLimit:
    """ASGI middleware: bodies over `max_bytes` get 413 before they are read into memory.

    A declared Content-Length is checked up front; a chunked body is counted as it arrives
    and cut off at the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, self._reason())
            return message

        await self.app(scope, counted_receive, send)

    def _reason(self) -> str:
        return (
            f"request body over the {self.max_bytes / 2**20:.3g} MB limit; send a smaller image "
            "or start the server with a larger --max-upload-mb"
        )

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": self._reason()}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
