"""Bearer-token check. The token travels in the Authorization header; only the streams and
images a browser loads by URL (EventSource, <img>: they cannot set headers) may carry it as
`?token=` instead.
"""

from __future__ import annotations

import secrets

from fastapi import HTTPException, Request


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
        """Event streams, MJPEG and gallery images: header or `?token=`."""
        self._check(request, allow_query=True)
