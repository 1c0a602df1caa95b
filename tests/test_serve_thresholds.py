"""`POST /v1/thresholds` (issue 27's "POST /v1/model-style updates"): the line's thresholds
change over HTTP, only the thresholds file beside the model is written (with the replaced set in
its history), the running station decides with them from its next batch, and a rollback
restores the set before. Every refused request writes nothing."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from onnx_fixtures import build_model, defect_frame
from serve_helpers import png, running

from uniad_edge.line_thresholds import thresholds_path

pytest.importorskip("fastapi")

PNG = {"content-type": "image/png"}


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.onnx"
    build_model(path, threshold=40.0, per_class={"wood": 30.0})
    return path


def score(url: str) -> dict:
    reply = httpx.post(f"{url}/v1/score", content=png(defect_frame()), headers=PNG, timeout=30)
    assert reply.status_code == 200
    return reply.json()


def verdict_becomes(url: str, want: str, seconds: float = 15) -> dict:
    """The next verdicts until one is `want` (the station reads the file between batches)."""
    deadline = time.monotonic() + seconds
    while True:
        got = score(url)
        if got["verdict"] == want or time.monotonic() > deadline:
            assert got["verdict"] == want, got
            return got
        time.sleep(0.2)


def test_thresholds_set_over_http_decide_the_next_batch_and_roll_back(model):
    model_bytes = model.read_bytes()
    with running(model) as srv:
        first = score(srv.url)
        assert first["verdict"] == "NG"
        high = first["score"] * 10
        reply = httpx.post(f"{srv.url}/v1/thresholds", json={"global": high, "note": "trial"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["thresholds"]["global"] == high
        assert reply.json()["previous"]["global"] == 40.0
        assert verdict_becomes(srv.url, "OK")["threshold"] == high
        info = httpx.get(f"{srv.url}/v1/model").json()
        assert "+t" in info["model_id"] and info["thresholds_source"] == str(thresholds_path(model))
        assert (
            "set by hand" in info["threshold_provenance"]
            and "trial" in info["threshold_provenance"]
        )
        saved = json.loads(thresholds_path(model).read_text())["thresholds"]
        assert saved["provenance"]["source"] == "manual"
        assert [h["global"] for h in saved["history"]] == [40.0]  # the replaced set
        assert saved["per_class"] == {}  # a set given by hand is the whole set
        rollback = httpx.post(f"{srv.url}/v1/thresholds", json={"rollback": True})
        assert rollback.status_code == 200 and rollback.json()["thresholds"]["global"] == 40.0
        assert verdict_becomes(srv.url, "NG")["threshold"] == 40.0
        again = httpx.post(f"{srv.url}/v1/thresholds", json={"rollback": True})
        assert again.status_code == 409 and "no earlier thresholds" in again.text
    assert model.read_bytes() == model_bytes  # the model file is never rewritten


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        ({"per_class": {"carpet": 1.0}}, {}, 422, "carpet"),
        ({"global": "5"}, {}, 422, "must be a number"),
        ({"global": -1.0}, {}, 422, "global threshold"),
        ({"global": 5.0, "color": "red"}, {}, 422, "rollback"),
        ({}, {}, 422, "at least one threshold"),
        ({"rollback": True}, {}, 409, "no earlier thresholds"),
        ({"global": 5.0}, {"origin": "http://evil.example"}, 403, ""),
    ],
)  # fmt: skip
def test_a_refused_thresholds_request_writes_nothing(model, body, headers, status, says):
    with running(model) as srv:
        reply = httpx.post(f"{srv.url}/v1/thresholds", json=body, headers=headers)
        assert reply.status_code == status and says in reply.text
        text = httpx.post(f"{srv.url}/v1/thresholds", content=b'{"global": 5}',
                          headers={"content-type": "text/plain"})  # fmt: skip
        assert text.status_code == 415
    assert not thresholds_path(model).exists()
