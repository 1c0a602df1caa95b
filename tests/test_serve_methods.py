"""HEAD and OPTIONS answer sensibly, and every answer carries the security headers (issue 28
item 13), over real HTTP (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from onnx_fixtures import build_model
from serve_helpers import running

TOKEN = "methods-token-1"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("methods") / "m.onnx"
    build_model(path)
    return path


def test_head_is_get_without_the_body(model):
    with running(model) as srv, httpx.Client(base_url=srv.url, timeout=10) as client:
        for path in ("/v1/health", "/", "/static/app.js", "/metrics", "/v1/model"):
            got, head = client.get(path), client.head(path)
            assert head.status_code == got.status_code == 200, path
            assert (
                head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
            )
        # a file's length, not /v1/health's: its uptime can gain a digit between two requests
        assert client.head("/static/app.js").headers["content-length"] == str(
            len(client.get("/static/app.js").content)
        )
        events = client.head("/v1/events")  # a stream ends once its headers are out
        assert events.status_code == 200 and events.headers["content-type"].startswith(
            "text/event-stream"
        )
        hub = srv.service.hub
        deadline = time.monotonic() + 10
        while hub._subscribers and time.monotonic() < deadline:  # the stream has ended
            time.sleep(0.05)
        assert not hub._subscribers
        assert client.head("/v1/score").status_code == 405  # POST only
        host, port = srv.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as raw:  # the wire itself
            raw.sendall(b"HEAD /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := raw.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and body == b""


def test_head_keeps_the_token_check(model):
    with running(model, token=TOKEN) as srv, httpx.Client(base_url=srv.url, timeout=10) as client:
        assert client.head("/v1/health").status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert client.head("/v1/health", headers=auth).status_code == 200


def test_options_says_which_methods_a_path_has_and_grants_no_cors(model):
    with running(model) as srv, httpx.Client(base_url=srv.url, timeout=10) as client:
        expected = {
            "/v1/health": "GET, HEAD, OPTIONS",
            "/v1/score": "OPTIONS, POST",
            "/v1/model": "GET, HEAD, OPTIONS, POST",
            "/": "GET, HEAD, OPTIONS",
            "/static/style.css": "GET, HEAD, OPTIONS",
        }
        for path, allow in expected.items():
            r = client.options(path)
            assert r.status_code == 204 and r.headers["allow"] == allow, (path, r.headers)
        assert client.options("/no/such/path").status_code == 404
        preflight = client.options(
            "/v1/model",
            headers={
                "Origin": "http://evil.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert not any(h.startswith("access-control-") for h in preflight.headers)


def test_every_answer_carries_the_security_headers(model):
    with running(model) as srv, httpx.Client(base_url=srv.url, timeout=10) as client:
        answers = {
            "dashboard": client.get("/"),
            "api": client.get("/v1/health"),
            "static": client.get("/static/app.js"),
            "404": client.get("/nope"),
            "421": client.get("/v1/health", headers={"host": "rebind.example"}),
            "403": client.post("/v1/score", headers={"Origin": "http://evil.example"}),
            "head": client.head("/"),
            "options": client.options("/v1/health"),
        }
        for what, r in answers.items():
            policy = r.headers.get("content-security-policy", "")
            assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, what
            assert r.headers.get("x-frame-options") == "DENY", what
            assert r.headers.get("x-content-type-options") == "nosniff", what
        assert "'unsafe-inline'" not in answers["dashboard"].headers["content-security-policy"]
