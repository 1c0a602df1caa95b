"""Request bodies -> BGR images: size caps (bytes, and pixels read from the image's header
before anything is decoded), content types, and one-line reasons for refusals."""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import UniadError
from ..runtime.frames import to_bgr8
from ..runtime.image_formats import SUPPORTED, refused_format
from .auth import send_json
from .origin import media_type

IMAGE_TYPES = ("image/", "application/octet-stream")
MULTIPART = "multipart/form-data"


class UnsupportedMediaType(UniadError):
    """A body that is neither an encoded image nor multipart form data (HTTP 415)."""


class TooLarge(UniadError):
    """An image whose header declares more pixels than the server decodes, or a request with
    more images than the queue can ever hold (HTTP 413: retrying cannot help)."""


def check_pixels(data: bytes, name: str, max_pixels: int) -> None:
    """Refuse an image whose header declares more than `max_pixels` (width x height), before
    its pixels are decoded: a 1 MB PNG can declare 20000 x 20000 and decode to gigabytes.
    A format that is not scored (`image_formats`: GIF, ...) is 415, as `run` refuses it too."""
    _check_format(data, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:  # reads the header only
                (width, height), channels = header.size, len(header.getbands())
    except Image.DecompressionBombError:
        raise TooLarge(f"{name} declares more than {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise _not_an_image(data, name) from None
    if width * height > max_pixels:
        raise TooLarge(
            f"{name} declares {width} x {height} pixels x {channels} channels, over the "
            f"{max_pixels}-pixel limit; send a smaller image or start the server with a larger "
            "--max-pixels"
        )


def decode_image(
    data: bytes, name: str = "request body", bit_depth: int | None = None
) -> np.ndarray:
    """An encoded image (PNG, JPEG, BMP, TIFF, WebP, ...) -> uint8 BGR, or a `UniadError`.
    Check its header first (`check_pixels`): decoding allocates what the header declares.

    A 16-bit file (10- and 12-bit sensors store their pixels in 16-bit PNG/TIFF) needs the
    sensor's `bit_depth`: mapping it to 8 bits by its top byte, as OpenCV would, turns a 12-bit
    image nearly black and its score silently wrong.
    """
    _check_format(data, name)
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None or image.dtype not in (np.uint8, np.uint16):
        raise _not_an_image(data, name)
    if image.dtype == np.uint16 and bit_depth is None:
        raise UniadError(
            f"{name} is a 16-bit image: add ?bit_depth=N with the bits the sensor uses "
            "(e.g. 12; 16 for full-range), or send an 8-bit image"
        )
    return to_bgr8(image, bit_depth)


def _check_format(data: bytes, name: str) -> None:
    if not data:
        raise UniadError(f"{name} is empty; send an encoded image ({SUPPORTED})")
    refused = refused_format(data)
    if refused is not None:
        raise UnsupportedMediaType(f"{name}: {refused}")


def _not_an_image(data: bytes, name: str) -> UniadError:
    return UniadError(
        f"{name} ({len(data)} bytes) is not an 8- or 16-bit image OpenCV can decode; send "
        f"{SUPPORTED}"
    )


def body_kind(content_type: str | None) -> str:
    """'image' or 'multipart' for a scoring request's Content-Type, else 415."""
    media = media_type(content_type)
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
        await send_json(send, 413, self._reason())


def check_fits(parts: int, queue_size: int) -> None:
    """A request with more images than the queue holds can never be scored: 413, not the
    503 "retry shortly" a momentarily full queue gets."""
    if parts > queue_size:
        raise TooLarge(
            f"{parts} images in one request, but the scoring queue holds {queue_size}: this "
            "request can never fit; send at most that many per request (or start the server "
            "with a larger --queue-size)"
        )
