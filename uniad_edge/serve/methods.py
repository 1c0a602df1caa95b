"""HEAD and OPTIONS on every route. FastAPI routes answer only the methods they declare, so a
monitor's `HEAD /v1/health` got 405. HEAD runs the GET route (its token check, its status and
headers) and sends no body: a stream (events, MJPEG) ends once its headers are out. OPTIONS
answers 204 with `Allow` and no CORS headers, so a preflight from another origin learns which
methods exist and is still refused by the browser.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAndOptions:
    """ASGI middleware: HEAD as GET without the body, OPTIONS from the app's routes."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes  # the app's own list: routes added later count too

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            allowed = allowed_methods(self.routes, scope)
            if allowed:
                await _send_options(send, allowed)
                return
        if scope["type"] == "http" and scope["method"] == "HEAD":
            await self._head(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _head(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the GET route, pass its status and headers on and end the answer there; from
        then on the route hears that the client is gone, so a stream stops."""
        answered = False

        async def headers_only(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def gone_once_answered() -> Message:
            return {"type": "http.disconnect"} if answered else await receive()

        await self.app({**scope, "method": "GET"}, gone_once_answered, headers_only)


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> list[str]:
    """The methods the routes matching `scope`'s path answer (HEAD with GET, and OPTIONS);
    empty when no route has the path."""
    found: set[str] = set()
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            found |= getattr(route, "methods", None) or {"GET"}  # a mount: static files
    if not found:
        return []
    if "GET" in found:
        found.add("HEAD")
    return sorted(found | {"OPTIONS"})


async def _send_options(send: Send, allowed: list[str]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [(b"allow", ", ".join(allowed).encode())],
        }
    )
    await send({"type": "http.response.body", "body": b""})
