"""Security headers on every answer. The dashboard and the API docs load only this server's
own scripts, styles, images and streams (no CDN, by design), so the Content-Security-Policy
allows 'self' and nothing else: an injected script cannot run or send data elsewhere, and no
other site may frame the pages (clickjacking a trigger button); X-Frame-Options says the same
to browsers without CSP, nosniff stops a file being read as another type.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

POLICY = (
    "default-src 'self'",
    "img-src 'self' data:",  # the dashboard's favicon and Swagger UI's icons are data: URLs
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # a ?token= in a URL never leaves in a Referer
}
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def content_security_policy(html: str = "") -> str:
    """The policy, plus the hash of each inline script of `html` (FastAPI's Swagger UI page
    starts the UI with one): those scripts run, no other inline code does."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in INLINE_SCRIPT.findall(html)
    ]
    scripts = (f"script-src 'self' {' '.join(hashes)}",) if hashes else ()
    return "; ".join((*POLICY, *scripts))


class SecurityHeaders:
    """ASGI middleware: the headers above on every answer (refusals included); an answer that
    brings its own Content-Security-Policy (the docs page) keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.policy = content_security_policy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", []))
                headers = MutableHeaders(scope=message)
                for name, value in {"content-security-policy": self.policy, **HEADERS}.items():
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
