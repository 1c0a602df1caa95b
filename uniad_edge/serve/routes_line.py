"""What the line decides with: health, the model (read, swap) and its thresholds (set, roll
back). A change is JSON, and off loopback only with a token."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..errors import UniadError
from ..hosts import is_loopback
from .config import ModelSourceRefused, ServeConfig
from .origin import media_type
from .service import ScoringService, SwapInProgress
from .thresholds import USAGE as THRESHOLDS_USAGE
from .thresholds import ThresholdsRefused

JSON = "application/json"


def add_line_routes(app: FastAPI, service: ScoringService, api: list[Any]) -> None:
    """`/v1/health`, `/v1/model` and `/v1/thresholds` of `service`, behind `api`."""
    config = service.config

    @app.get("/v1/health", dependencies=api, summary="Model loaded, each camera's state")
    async def health() -> JSONResponse:
        body = service.health()
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get("/v1/model", dependencies=api, summary="Model metadata and thresholds in use")
    async def model() -> dict[str, Any]:
        return service.model_info()

    @app.post("/v1/model", dependencies=api, summary="Swap in another model without stopping")
    async def swap_model(request: Request) -> dict[str, Any]:
        # `config` is the one serve started with: a swap moves the model, not the model folders
        usage = 'send JSON {"path": "export/model.onnx"}'
        body = await _line_change(request, config, "/v1/model", usage)
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            raise HTTPException(422, usage)
        try:
            config.check_model_source(body["path"])
        except ModelSourceRefused as exc:
            raise HTTPException(403, str(exc)) from None
        try:
            return await run_in_threadpool(service.swap_model, body["path"])
        except SwapInProgress as exc:
            raise HTTPException(409, str(exc)) from None
        except UniadError as exc:
            reason = f"model not swapped, the running one keeps scoring: {exc}"
            raise HTTPException(422, reason) from None

    @app.post("/v1/thresholds", dependencies=api, summary="Set or roll back the line's thresholds")
    async def set_thresholds(request: Request) -> dict[str, Any]:
        body = await _line_change(request, config, "/v1/thresholds", THRESHOLDS_USAGE)
        try:
            return await run_in_threadpool(service.set_thresholds, body)
        except ThresholdsRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        except UniadError as exc:
            raise HTTPException(409, f"thresholds not changed: {exc}") from None


async def _line_change(request: Request, config: ServeConfig, path: str, usage: str) -> Any:
    """The JSON body of a request that changes what the line decides with (the model, its
    thresholds): off loopback only with a token, only as `application/json` (None when it is
    not JSON, for the caller's 422 with `usage`)."""
    if config.token is None and not is_loopback(config.host):
        raise HTTPException(403, f"POST {path} off loopback needs serve --token")
    if media_type(request.headers.get("content-type")) != JSON:
        raise HTTPException(415, f"send Content-Type: {JSON}; {usage}")
    try:
        return await request.json()
    except ValueError:
        raise HTTPException(422, usage) from None
