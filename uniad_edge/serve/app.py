"""The FastAPI application: the guards around every request (body size, methods, origin,
host, security headers, token), error answers, the dashboard page, and the routes of each area
(`routes_score`, `routes_cameras`, `routes_line`, `routes_watch`). Handlers stay thin; the work
is in `ScoringService` and the cameras.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..errors import UniadError
from ..runtime.station.requests import QueueFull
from .auth import HostGuard, TokenGuard
from .docs import add_docs
from .headers import SecurityHeaders
from .methods import HeadAndOptions
from .origin import OriginGuard
from .routes_cameras import add_camera_routes
from .routes_line import add_line_routes
from .routes_score import add_score_routes
from .routes_watch import add_watch_routes
from .service import ScoringService
from .uploads import BodyLimit, TooLarge, UnsupportedMediaType

STATIC = Path(__file__).parent / "static"
RETRY_AFTER_S = 1


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

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_score_routes(app, service, api)
    add_camera_routes(app, service, api, media)
    add_line_routes(app, service, api)
    add_watch_routes(app, service, api, media)
    return app
