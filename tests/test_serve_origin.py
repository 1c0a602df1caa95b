"""Writes another web origin could send are refused on every serve, token or not, and POST
/v1/model loads only local files under the model folders (issue 28 item 1). Over real HTTP
(uvicorn on 127.0.0.1), with the requests of the field report."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading

import httpx
import pytest
from onnx_fixtures import good_frame, named_model
from runtime_helpers import write_folder
from serve_helpers import png, running, serve_process

EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("origin")
    (root / "m1").mkdir()
    (root / "m2").mkdir()
    return {
        "first": named_model(root / "m1" / "model.onnx", "model-one", threshold=40.0),
        "beside": named_model(root / "m1" / "other.onnx", "model-beside", threshold=55.0),
        "outside": named_model(root / "m2" / "model.onnx", "model-two", threshold=60.0),
    }


def records(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_the_field_reports_cross_site_requests_are_refused(models, tmp_path):
    log = tmp_path / "line.jsonl"
    cameras = {"cam": str(write_folder(tmp_path / "frames", good=3, bad=0))}
    station = {"trigger_only": True}
    with (
        running(models["first"], cameras, station=station, log=log) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as client,
    ):
        # curl -H 'Origin: http://evil.example' -H 'Content-Type: text/plain'
        #      -d '{"path": "m2/model.onnx"}' http://127.0.0.1:PORT/v1/model
        body = json.dumps({"path": str(models["beside"])})
        r = client.post(
            "/v1/model", content=body, headers={"Origin": EVIL, "Content-Type": "text/plain"}
        )
        assert r.status_code == 403, r.text
        assert "another web origin" in r.json()["detail"] and EVIL in r.json()["detail"]
        r = client.post(
            "/v1/model", content=body, headers={"Origin": EVIL, "Content-Type": "application/json"}
        )
        assert r.status_code == 403  # a preflighted type from another origin: refused too
        r = client.post("/v1/model", content=body, headers={"Content-Type": "text/plain"})
        assert r.status_code == 415 and "text/plain is not supported" in r.json()["detail"]
        r = client.post("/v1/model", content=body)  # curl -d's default: form-urlencoded
        assert r.status_code == 415, r.text
        assert client.get("/v1/model").json()["model_id"] == "model-one"

        trigger = "/v1/cameras/cam/trigger?part_id=FAKE"
        for headers in (
            {"Origin": EVIL},
            {"Origin": "null"},  # a sandboxed frame or a no-referrer page
            {"Origin": f"http://localhost:{srv.service.config.port + 1}"},  # another local port
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Referer": f"{EVIL}/page?token=abc"},
        ):
            r = client.post(trigger, headers=headers)
            assert r.status_code == 403, (headers, r.text)
            assert "abc" not in r.text  # a Referer's path and query are never echoed
        files = {"file": ("a.png", png(good_frame()), "image/png")}
        r = client.post("/v1/score", files=files, headers={"Origin": EVIL})
        assert r.status_code == 403
        assert records(log) == []  # nothing scored, nothing written

        own = srv.url  # the dashboard's own origin, and clients that send no Origin at all
        ok = client.post(trigger, headers={"Origin": own, "Sec-Fetch-Site": "same-origin"})
        assert ok.status_code == 200, ok.text
        assert client.post("/v1/score", files=files, headers={"Referer": f"{own}/"}).is_success
        assert client.post("/v1/cameras/cam/trigger").is_success
        moved = client.post("/v1/model", json={"path": str(models["beside"])})
        assert moved.status_code == 200 and moved.json()["model"] == "model-beside"
    assert [r.get("part_id") for r in records(log) if "event" not in r] == ["FAKE", None, None]


def test_a_token_does_not_let_another_origin_write(models):
    token = {"Authorization": "Bearer t0ken-for-origin"}
    with running(models["first"], token="t0ken-for-origin") as srv:
        image = {"content": png(good_frame()), "headers": {**token, "content-type": "image/png"}}
        r = httpx.post(f"{srv.url}/v1/score", **image)
        assert r.status_code == 200
        r = httpx.post(
            f"{srv.url}/v1/score",
            content=image["content"],
            headers={**image["headers"], "Origin": EVIL},
        )
        assert r.status_code == 403
        for method in ("PUT", "DELETE", "PATCH"):  # every write, whether a route has it or not
            r = httpx.request(method, f"{srv.url}/v1/model", headers={**token, "Origin": EVIL})
            assert r.status_code == 403, method


def test_post_v1_model_takes_only_files_in_the_model_folders(models, tmp_path):
    with running(models["first"]) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        r = client.post("/v1/model", json={"path": str(models["outside"])})
        assert r.status_code == 403 and "--model-dir" in r.json()["detail"], r.text
        sneaky = str(models["first"].parent / ".." / "m2" / "model.onnx")
        assert client.post("/v1/model", json={"path": sneaky}).status_code == 403
        link = models["first"].parent / "link.onnx"
        link.symlink_to(models["outside"])
        try:  # a link out of the folder leads out of it
            assert client.post("/v1/model", json={"path": str(link)}).status_code == 403
        finally:
            link.unlink()
        assert client.get("/v1/model").json()["model_id"] == "model-one"
    with (
        running(models["first"], model_dirs=(models["outside"].parent,)) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as client,
    ):
        r = client.post("/v1/model", json={"path": str(models["outside"])})
        assert r.status_code == 200 and r.json()["model"] == "model-two", r.text
        back = client.post("/v1/model", json={"path": str(models["first"])})
        assert back.status_code == 200  # the first model's folder stays allowed after a swap


class Listener:
    """A TCP port on 127.0.0.1 that counts the connections made to it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def test_a_triton_url_needs_allow_remote_models_and_nothing_connects_before(models):
    with Listener() as triton, running(models["first"]) as srv:
        url = f"http://127.0.0.1:{triton.port}/uniad"
        r = httpx.post(f"{srv.url}/v1/model", json={"path": url}, timeout=30)
        assert r.status_code == 403 and "--allow-remote-models" in r.json()["detail"]
        assert triton.accepted == 0  # refused before any connection was made
    with Listener() as triton, running(models["first"], allow_remote_models=True) as srv:
        url = f"http://127.0.0.1:{triton.port}/uniad"
        r = httpx.post(f"{srv.url}/v1/model", json={"path": url}, timeout=60)
        assert r.status_code == 422, r.text  # tried (the listener is no Triton), not swapped
        assert triton.accepted > 0


def test_model_dirs_must_be_folders(models, tmp_path):
    from uniad_edge.errors import UniadError
    from uniad_edge.serve.config import ServeConfig

    with pytest.raises(UniadError, match="--model-dir .* is not a folder"):
        ServeConfig.from_options(model=models["first"], model_dirs=(tmp_path / "nope",))


def test_a_real_serve_refuses_the_field_reports_curl(models, tmp_path):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("needs curl (apt-get install -y curl)")
    for name in ("m1", "m2"):
        shutil.copytree(models["first"].parent, tmp_path / name)
    with serve_process(tmp_path, "--model", "m1/model.onnx") as srv:

        def run_curl(*args: str) -> tuple[int, str]:
            done = subprocess.run(
                [curl, "-s", "-w", "\n%{http_code}", *args, f"{srv.url}/v1/model"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            body, _, status = done.stdout.rpartition("\n")
            return int(status), body

        body = '{"path": "m2/model.onnx"}'
        status, answer = run_curl(
            "-H", f"Origin: {EVIL}", "-H", "Content-Type: text/plain", "-d", body
        )
        assert status == 403 and "another web origin" in answer
        status, answer = run_curl("-H", "Content-Type: text/plain", "-d", body)
        assert status == 415
        status, answer = run_curl("-H", "Content-Type: application/json", "-d", body)
        assert status == 403 and "outside the model folders" in answer  # m2 was not named
        status, answer = run_curl(
            "-H",
            "Content-Type: application/json",
            "-d",
            body.replace("m2", "m1").replace("model.onnx", "other.onnx"),
        )
        assert status == 200 and "model-beside" in answer, answer
    assert "Traceback" not in srv.stderr
