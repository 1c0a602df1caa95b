"""The API docs (`/docs`, Swagger UI) and schema (`/openapi.json`), behind the token like the
API. Swagger UI's scripts come from the `swagger-ui-bundle` package, not a CDN, so the docs
work on a factory network without internet access."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"


def add_docs(app: FastAPI, dependencies: list[Any]) -> None:
    """Routes for the schema and the docs page; `dependencies` guard both (header or
    `?token=`: a browser opens /docs by URL, and the page fetches the schema the same way)."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        swagger_ui_path = None
    else:
        app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/openapi.json", dependencies=dependencies, include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", dependencies=dependencies, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        if swagger_ui_path is None:
            raise HTTPException(
                404, "the API docs need swagger-ui-bundle: pip install 'uniad-edge[serve]'"
            )
        token = request.query_params.get("token")
        schema = "/openapi.json" + (f"?token={quote(token, safe='')}" if token else "")
        return get_swagger_ui_html(
            openapi_url=schema,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
