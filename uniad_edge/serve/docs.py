"""The API docs (`/docs`, Swagger UI) and schema (`/openapi.json`), behind the token like the
API. Swagger UI's scripts come from the `swagger-ui-bundle` package, not a CDN, so the docs
work on a factory network without internet access."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .headers import content_security_policy

ASSETS = "/docs-assets"
DOCS_SCHEMA = "/docs/openapi.json"


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

    @app.get(DOCS_SCHEMA, dependencies=dependencies, include_in_schema=False)
    async def docs_schema() -> JSONResponse:
        """The schema as the bundled Swagger UI reads it: before 5.0 it refuses to render an
        "openapi: 3.1" schema (FastAPI's), whose content it shows fine labelled 3.0."""
        schema = app.openapi()
        if swagger_ui_major(swagger_ui_path) < 5:
            schema = {**schema, "openapi": "3.0.3"}
        return JSONResponse(schema)

    @app.get("/docs", dependencies=dependencies, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        if swagger_ui_path is None:
            raise HTTPException(
                404, "the API docs need swagger-ui-bundle: pip install 'uniad-edge[serve]'"
            )
        token = request.query_params.get("token")
        schema = DOCS_SCHEMA + (f"?token={quote(token, safe='')}" if token else "")
        page = get_swagger_ui_html(
            openapi_url=schema,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
        page.headers["content-security-policy"] = content_security_policy(page.body.decode())
        return page


def swagger_ui_major(path: str | None) -> int:
    """The major version of swagger-ui-bundle's Swagger UI, from its folder's name
    (`vendor/swagger-ui-4.15.5`); 5 when unknown (the current line)."""
    found = re.search(r"swagger-ui-(\d+)\.", str(path))
    return int(found.group(1)) if found else 5
