"""Who may talk to the service: the bearer token (in the Authorization header; only what a
browser loads by URL (EventSource, <img>, the API docs: they cannot set headers) may carry it as
`?token=` instead, and the access log never shows it), and the Host names it answers to.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_IN_QUERY = re.compile(r"((?:^|[?&])token=)[^&\s\"]*", re.IGNORECASE)


class TokenGuard:
    """FastAPI dependencies that refuse a request without the service's token (401)."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def _matches(self, given: str | None) -> bool:
        return given is not None and secrets.compare_digest(given.encode(), self.token.encode())  # type: ignore[union-attr]

    def _check(self, request: Request, allow_query: bool) -> None:
        if self.token is None:
            return
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self._matches(value.strip()):
            return
        if allow_query and self._matches(request.query_params.get("token")):
            return
        raise HTTPException(
            401,
            "missing or wrong bearer token; send `Authorization: Bearer TOKEN`",
            headers={"WWW-Authenticate": "Bearer"},
        )

    # async: FastAPI would run plain functions on a worker thread, one hop per request
    async def header(self, request: Request) -> None:
        """API calls: the Authorization header only."""
        self._check(request, allow_query=False)

    async def header_or_query(self, request: Request) -> None:
        """Event streams, MJPEG, gallery images and the API docs: header or `?token=`."""
        self._check(request, allow_query=True)


class HostGuard:
    """ASGI middleware: refuse a request whose Host header names another server (421).

    A DNS-rebinding page makes the browser send requests for its own name to 127.0.0.1, then
    reads the answers as same-origin; a server that answers only to its own names (loopback
    names, `--host`, `--allowed-host`) gives that page nothing. An IP address in the Host header
    cannot be rebound, so one is accepted; so is a request without a Host header (HTTP/1.0).
    """

    def __init__(self, app: ASGIApp, names: frozenset[str]) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            raw = dict(scope["headers"]).get(b"host")
            name = None if raw is None else host_name(raw.decode("latin-1"))
            if name is not None and not self._allowed(name):
                await send_json(
                    send,
                    421,
                    f"this server does not answer to the name {name[:100]!r} in the Host "
                    "header; start it with --allowed-host NAME to accept it",
                )
                return
        await self.app(scope, receive, send)

    def _allowed(self, name: str) -> bool:
        if name in self.names:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


def host_name(header: str) -> str:
    """The name in a Host header, lower-case, without the port (`[::1]:8080` -> `::1`)."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    if text.count(":") == 1:
        return text.partition(":")[0]
    return text


async def send_json(send: Send, status: int, detail: str) -> None:
    """A whole JSON error answer from ASGI middleware (before any app code runs)."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RedactTokens(logging.Filter):
    """Access-log filter: `?token=SECRET` in a logged URL becomes `?token=<redacted>`.
    Browsers carry the token in the query for event streams, MJPEG and gallery images (they
    cannot set headers there), and uvicorn logs every URL in full."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact(a) if isinstance(a, str) and "token=" in a.lower() else a
                for a in record.args
            )
        elif isinstance(record.msg, str) and "token=" in record.msg.lower():
            record.msg = redact(record.msg)
        return True


def redact(text: str) -> str:
    return TOKEN_IN_QUERY.sub(r"\1<redacted>", text)


def install_redaction(logger_name: str = "uvicorn.access") -> None:
    """Add `RedactTokens` to the access logger once (uvicorn configures it per server)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
