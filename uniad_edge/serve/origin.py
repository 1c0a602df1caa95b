"""Writes another web origin could send. Any page a browser on the line PC opens can send a
"simple" request (no CORS preflight: no body, or a text/plain, form-urlencoded or multipart
body) to 127.0.0.1; it cannot read the answer, but the write happens (a model swapped, a part
scored and logged). The Host check (`auth.HostGuard`) stops DNS rebinding, not this.

So every write (any method but GET, HEAD and OPTIONS) is refused with 403 when the browser's
own headers say it comes from another origin: `Sec-Fetch-Site` (not "same-origin" or "none"),
else `Origin`, else `Referer`, compared with the Host the request was sent to. A client that
sends none of them (curl, scripts, PLC gateways) is not a browser page and stays allowed, with
the token as its guard. A body must declare JSON, multipart or an image (415 otherwise): a
text/plain or form body is what a cross-site form sends, never what this API reads.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .auth import send_json

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OWN_SITE = frozenset({"same-origin", "none"})  # "none": the user typed or bookmarked the URL
BODY_TYPES = ("application/json", "multipart/form-data", "application/octet-stream")
DEFAULT_PORTS = {"http": 80, "https": 443}


class OriginGuard:
    """ASGI middleware: writes from another web origin get 403, bodies of a type a cross-site
    form sends get 415, before any route, token check or body read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = Headers(scope=scope)
            foreign = foreign_origin(headers)
            if foreign is not None:
                await send_json(
                    send,
                    403,
                    f"{scope['method']} from another web origin ({foreign}) is refused: a page "
                    "on another site must not drive this service; call it from a script or the "
                    "dashboard's own origin",
                )
                return
            if has_body(headers) and not body_type_allowed(headers.get("content-type")):
                await send_json(send, 415, body_type_refusal(headers.get("content-type")))
                return
        await self.app(scope, receive, send)


def foreign_origin(headers: Headers) -> str | None:
    """What says the request comes from another web origin (for the answer), or None."""
    site = headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in OWN_SITE:
        return f"Sec-Fetch-Site: {site[:20]}"
    host = headers.get("host")
    for name in ("origin", "referer"):  # Referer only when there is no Origin
        value = headers.get(name)
        if value is not None:
            return None if same_origin(value, host) else f"{name.title()}: {origin_of(value)}"
    return None


def same_origin(url: str, host: str | None) -> bool:
    """Whether `url` (an Origin or Referer) names the server the Host header names: the same
    host and port (the scheme may differ behind a TLS proxy). "null" and anything unparsable
    are foreign."""
    if host is None:
        return False
    try:
        theirs = urlsplit(url)
        port = theirs.port or DEFAULT_PORTS[theirs.scheme.lower()]
        ours = urlsplit(f"//{host.strip()}")
        return (theirs.hostname, port) == (ours.hostname, ours.port or port)
    except (ValueError, KeyError):
        return False


def origin_of(url: str) -> str:
    """scheme://host:port of `url` only (a Referer's path and query may hold secrets)."""
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
    except ValueError:
        return "unparsable"
    return f"{parts.scheme}://{netloc}"[:100] if parts.scheme else url[:20]


def has_body(headers: Headers) -> bool:
    length = headers.get("content-length", "").strip()
    return "transfer-encoding" in headers or (length.isdigit() and int(length) > 0)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def body_type_allowed(content_type: str | None) -> bool:
    media = media_type(content_type)
    return media in BODY_TYPES or media.startswith("image/")


def body_type_refusal(content_type: str | None) -> str:
    return (
        f"Content-Type {media_type(content_type) or '(none)'} is not supported: send "
        "application/json, multipart/form-data with one file part per image, or an image "
        "(image/png, image/jpeg, ...); text and form bodies are what a page on another site "
        "can send, so none is read"
    )
