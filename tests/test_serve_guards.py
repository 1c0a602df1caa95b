"""What `serve` refuses, over real HTTP (uvicorn on 127.0.0.1): decompression bombs before
decoding, requests that can never fit the queue, foreign Host headers, the docs and schema
without the token, part ids that would break a header or a log line; and what it never logs
(issue 21 items 1-4, 11-14, and /docs offline)."""

from __future__ import annotations

import io
import logging
import struct
import zlib
from urllib.parse import unquote

import httpx
import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model, good_frame
from ports import free_port, held_socket
from serve_helpers import png, running

from uniad_edge.errors import UniadError
from uniad_edge.serve.config import ServeConfig
from uniad_edge.serve.server import BackgroundServer, build_service

IMAGE_PNG = {"content-type": "image/png"}
TOKEN = "s3cret-token-42"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("guards") / "m.onnx"
    build_model(path, threshold=40.0)
    return path


def bomb_png(width: int, height: int) -> bytes:
    """A valid grey PNG of `width` x `height` black pixels: kilobytes that decode to
    width x height bytes (x3 once OpenCV makes it BGR)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(body, zlib.crc32(kind))
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    row = bytes(width + 1)  # filter byte + pixels
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_is_refused_from_its_header(model, tmp_path):
    bomb = bomb_png(8000, 8000)  # 64 MP from about 64 KB
    assert len(bomb) < 200_000
    log = tmp_path / "api.jsonl"
    with running(model, log=log) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        r = client.post("/v1/score", content=bomb, headers=IMAGE_PNG)
        assert r.status_code == 413, r.text
        assert "8000 x 8000 pixels" in r.json()["detail"] and "--max-pixels" in r.json()["detail"]
        parts = [("file", (f"b{i}.png", bomb, "image/png")) for i in range(3)]
        parts.insert(0, ("file", ("ok.png", png(good_frame()), "image/png")))
        r = client.post("/v1/score", files=parts)
        assert r.status_code == 413 and "b0.png declares" in r.json()["detail"]
        ok = client.post("/v1/score", content=png(good_frame()), headers=IMAGE_PNG)
        assert ok.status_code == 200
    assert len(log.read_text().splitlines()) == 1  # the refused requests scored nothing


def test_a_gif_upload_is_415_naming_the_formats_as_run_refuses_it(model, tmp_path):
    """OpenCV would decode it; `run` makes a GIF in a folder an ERROR record, so serve refuses
    it too (by its bytes: a GIF sent as image/png as well) and scores nothing."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(good_frame()[..., ::-1]).save(buffer, format="GIF")
    log = tmp_path / "api.jsonl"
    with running(model, log=log) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        for content_type in ("image/gif", "image/png"):
            r = client.post(
                "/v1/score", content=buffer.getvalue(), headers={"Content-Type": content_type}
            )
            assert r.status_code == 415, r.text
            assert "GIF images are not scored" in r.json()["detail"]
            assert "PNG, JPEG" in r.json()["detail"]
        parts = [("file", ("part.gif", buffer.getvalue(), "image/gif"))]
        r = client.post("/v1/score", files=parts)
        assert r.status_code == 415 and "part.gif" in r.json()["detail"]
        assert (
            client.post("/v1/score", content=png(good_frame()), headers=IMAGE_PNG).status_code
            == 200
        )
    assert len(log.read_text().splitlines()) == 1


def test_a_small_pixel_limit_applies_and_is_a_cli_option(model):
    with running(model, max_pixels=1000) as srv, httpx.Client(base_url=srv.url) as client:
        r = client.post("/v1/score", content=png(good_frame((48, 64))), headers=IMAGE_PNG)
        assert r.status_code == 413 and "64 x 48 pixels" in r.json()["detail"]


def test_more_parts_than_the_queue_holds_is_413_not_503(model):
    with running(model, queue_size=2) as srv, httpx.Client(base_url=srv.url) as client:
        parts = [("file", (f"{i}.png", png(good_frame()), "image/png")) for i in range(3)]
        r = client.post("/v1/score", files=parts)
        assert r.status_code == 413, r.text
        assert "can never fit" in r.json()["detail"] and "retry" not in r.json()["detail"]
        assert client.post("/v1/score", files=parts[:2]).status_code == 200


def test_multipart_parts_are_decoded_one_at_a_time(model, monkeypatch):
    """Item 1: a multipart's images are decoded one after another (at most one decoded image
    being made at a time), not all at once."""
    import threading
    import time

    from uniad_edge.serve import routes_score as serve_app

    active, peak, calls, lock = [0], [0], [], threading.Lock()
    decode = serve_app.decode_image

    def tracked(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            calls.append(args[1])
        try:
            time.sleep(0.05)  # room for a concurrent decode to overlap, were there one
            return decode(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(serve_app, "decode_image", tracked)
    with running(model, queue_size=8) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        parts = [("file", (f"{i}.png", png(good_frame()), "image/png")) for i in range(4)]
        r = client.post("/v1/score", files=parts)
    assert r.status_code == 200, r.text
    assert calls == [f"{i}.png" for i in range(4)] and peak[0] == 1


def test_the_access_log_never_shows_the_token(model):
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    sock = held_socket()
    config = ServeConfig.from_options(model=model, port=sock.getsockname()[1], token=TOKEN)
    handler = Keep()
    with BackgroundServer(build_service(config), log_level="info", sock=sock) as srv:
        logging.getLogger("uvicorn.access").addHandler(handler)
        try:
            with httpx.Client(base_url=srv.url) as client:
                for path in ("/v1/gallery/x.png", "/v1/cameras/a/latest.jpg", "/docs"):
                    client.get(path, params={"token": TOKEN, "overlay": "1"})
                client.get("/v1/health", params={"TOKEN": TOKEN})
        finally:
            logging.getLogger("uvicorn.access").removeHandler(handler)
    assert len(lines) >= 4, lines
    assert not [line for line in lines if TOKEN in line], lines
    assert all("<redacted>" in line for line in lines)


def test_only_its_own_host_names_are_answered(model):
    with running(model, allowed_hosts=("Edge-Box.local",)) as srv:
        port = srv.service.config.port
        with httpx.Client(base_url=srv.url) as client:
            for host in (f"127.0.0.1:{port}", f"localhost:{port}", "edge-box.local", "[::1]:1"):
                r = client.get("/v1/health", headers={"host": host})
                assert r.status_code == 200, (host, r.text)
            for host in ("rebind.attacker.example", f"evil.example:{port}"):
                r = client.get("/v1/health", headers={"host": host})
                assert r.status_code == 421, (host, r.text)
                assert "--allowed-host" in r.json()["detail"]


def test_docs_and_schema_need_the_token_and_load_nothing_from_a_cdn(model):
    with running(model, token=TOKEN) as srv, httpx.Client(base_url=srv.url) as client:
        for path in ("/openapi.json", "/docs", "/docs/openapi.json"):
            assert client.get(path).status_code == 401, path
        assert client.get("/redoc").status_code in (401, 404)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert "/v1/score" in client.get("/openapi.json", headers=auth).json()["paths"]
        page = client.get("/docs", params={"token": TOKEN})
        assert page.status_code == 200
        assert "cdn" not in page.text and "https://" not in page.text
        assert f"/openapi.json?token={TOKEN}" in unquote(page.text)
        script = client.get("/docs-assets/swagger-ui-bundle.js")
        assert script.status_code == 200 and len(script.content) > 100_000


@pytest.mark.parametrize("token", ["pässwört-long", "tab\tinside-token"])
def test_a_token_that_is_not_printable_ascii_is_refused_at_start(token):
    with pytest.raises(UniadError, match="printable ASCII"):
        ServeConfig.from_options(model="m.onnx", token=token)


# These two name a model that does not exist: the setting must be refused before any model is
# loaded (and a server that wrongly accepted it could not start and block the test).
def test_serve_refuses_a_non_ascii_token_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UNIAD_EDGE_TOKEN", "pässwört-long")
    assert run_main("serve", "--model", tmp_path / "none.onnx", "--port", free_port()) == 2
    assert "printable ASCII" in capsys.readouterr().err


def test_an_infinite_upload_limit_is_a_one_line_error(tmp_path, capsys):
    assert run_main("serve", "--model", tmp_path / "none.onnx", "--max-upload-mb", "inf") == 2
    err = capsys.readouterr().err
    assert "--max-upload-mb must be > 0" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "part_id", ["P1\r\nX-Evil: 1", "P\x00NUL", "line\nbreak", "x" * 201, "tab\there"]
)
def test_bad_part_ids_get_422_before_anything_is_scored(model, tmp_path, part_id):
    log = tmp_path / "api.jsonl"
    with running(model, log=log) as srv, httpx.Client(base_url=srv.url) as client:
        r = client.post(
            "/v1/score",
            content=png(good_frame()),
            params={"part_id": part_id, "heatmap": "true"},
            headers={**IMAGE_PNG, "accept": "image/png"},
        )
        assert r.status_code == 422, r.text
        assert "part id" in r.text
    assert not log.exists() or not log.read_text().strip()


def test_a_non_ascii_part_id_is_kept_and_its_header_encoded(model, tmp_path):
    part = "Prüfteil-Ω 7 100%"
    with running(model) as srv, httpx.Client(base_url=srv.url) as client:
        r = client.post(
            "/v1/score",
            content=png(good_frame()),
            params={"part_id": part, "heatmap": "true"},
            headers={**IMAGE_PNG, "accept": "image/png"},
        )
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.headers["x-part-id"].isascii() and unquote(r.headers["x-part-id"]) == part
        r = client.post(
            "/v1/score", content=png(good_frame()), params={"part_id": part}, headers=IMAGE_PNG
        )
        assert r.json()["part_id"] == part
