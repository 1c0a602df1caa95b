"""The dashboard in a real headless Chromium: verdict events update the counters and chart.

`UNIAD_EDGE_UPDATE_SCREENSHOT=1` also writes the screenshot to docs/serve-dashboard.png.
"""

from __future__ import annotations

import base64
import functools
import http.server
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from onnx_fixtures import build_model, defect_frame, good_frame
from ports import free_port
from runtime_helpers import write_folder, write_video
from serve_helpers import png, running

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "serve-dashboard.png"


def _browser(profile: str):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip(
            "needs Debian's chromium and chromium-driver (apt-get install -y chromium "
            "chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to see CSP refusals
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _csp_refusals(browser) -> list[str]:
    """Console lines where the page's Content-Security-Policy refused something it loads."""
    return [e["message"] for e in browser.get_log("browser") if "Content Security" in e["message"]]


def _wait(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _number(browser, element_id: str) -> int:
    return int(browser.find_element("id", element_id).text)


def _total(browser) -> int:
    return _number(browser, "total-ok") + _number(browser, "total-ng")


def _points(browser) -> int:
    return int(browser.find_element("id", "chart").get_attribute("data-points"))


def test_dashboard_updates_on_verdict_events(tmp_path):
    model = tmp_path / "m.onnx"
    build_model(model, per_class={"bottle": 40.0, "cable": 60.0})
    cameras = {
        "top": str(write_video(tmp_path / "top.mp4", good=5, bad=11)),
        "side": str(write_folder(tmp_path / "side", good=5, bad=11)),
    }
    token = "dashboard-secret"
    auth = {"Authorization": f"Bearer {token}"}
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    options = {"save_dir": tmp_path / "ng", "token": token, "history_s": 60}
    with running(model, cameras, station={"trigger_only": True}, **options) as srv:
        ng = 0

        def verdict(path: str, headers: dict | None = None, **kwargs) -> None:
            nonlocal ng
            headers = {**auth, **(headers or {})}
            answer = httpx.post(f"{srv.url}{path}", headers=headers, timeout=30, **kwargs).json()
            ng += answer["verdict"] == "NG"

        for camera in ("top", "side", "top", "side"):
            verdict(f"/v1/cameras/{camera}/trigger")
        browser = _browser(profile)
        try:
            browser.get(f"{srv.url}/?token={token}")
            _wait(lambda: _total(browser) == 4, what="counters from the snapshot")
            assert "token" not in browser.current_url  # kept in sessionStorage, not the URL
            _wait(lambda: _points(browser) == 4, what="the chart")
            # Live verdicts after the page loaded, a few seconds apart: both cameras' triggers
            # (the files' next frames: good, then defective) and API scores.
            for i in range(6):
                verdict("/v1/cameras/top/trigger", params={"part_id": f"P-{i}"})
                verdict("/v1/cameras/side/trigger")
                image = defect_frame(seed=i) if i % 3 == 2 else good_frame(seed=i)
                verdict(
                    "/v1/score", content=png(image), headers={**auth, "content-type": "image/png"}
                )
                time.sleep(0.3)
            _wait(lambda: _total(browser) == 22, what="the new verdict events")
            assert _number(browser, "total-ng") == ng and 0 < ng < 22
            _wait(lambda: _points(browser) == 22, what="the chart to draw the new points")
            assert len(browser.find_elements("css selector", "#gallery figure")) == ng
            _wait(
                lambda: browser.execute_script(
                    "return [...document.querySelectorAll('#gallery img, .camera img')]"
                    ".every(i => i.naturalWidth > 0)"
                ),
                what="gallery and MJPEG images (loaded with the query token)",
            )
            assert browser.find_element("id", "link").text == "live"
            assert _csp_refusals(browser) == []  # the policy fits what the dashboard loads
            assert "fixture" in browser.find_element("id", "model-name").text
            assert "cable" in browser.find_element("id", "model").text
            shot = cv2.imdecode(np.frombuffer(browser.get_screenshot_as_png(), np.uint8), 1)
            assert shot.shape[0] > 500 and shot.std() > 10  # a rendered page, not a blank
            small_png = [cv2.IMWRITE_PNG_COMPRESSION, 9]
            assert cv2.imwrite(str(tmp_path / "serve-dashboard.png"), shot, small_png)
            if os.environ.get("UNIAD_EDGE_UPDATE_SCREENSHOT"):  # refresh the README's picture
                assert cv2.imwrite(str(SCREENSHOT), shot, small_png)
        finally:
            browser.quit()


def test_dashboard_recovers_when_the_server_restarts(tmp_path):
    model = tmp_path / "m.onnx"
    build_model(model)
    port = free_port()
    image = {"content": png(defect_frame()), "headers": {"content-type": "image/png"}}
    browser = _browser(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path))
    try:
        with running(model, port=port) as srv:
            for _ in range(3):
                httpx.post(f"{srv.url}/v1/score", **image)
            browser.get(srv.url)
            _wait(lambda: _total(browser) == 3, what="the first server's counters")
        _wait(lambda: browser.find_element("id", "link").text == "reconnecting", what="the drop")
        with running(model, port=port) as srv:  # a restarted service starts counting afresh
            _wait(lambda: browser.find_element("id", "link").text == "live", what="a reconnect")
            _wait(lambda: _total(browser) == 0, what="the new server's snapshot")
            httpx.post(f"{srv.url}/v1/score", **image)
            _wait(lambda: _total(browser) == 1, what="a verdict after the reconnect")
            _wait(lambda: _points(browser) == 1, what="the chart after the reconnect")
            card = browser.find_element("id", "cam-api")  # per-camera counts restarted too
            assert card.find_element("css selector", ".ng").text == "1"
            assert card.find_element("css selector", ".ok").text == "0"
    finally:
        browser.quit()


ATTACK_PAGE = """<!doctype html><title>loading</title>
<form id="swap" method="post" enctype="text/plain" action="{url}/v1/model">
<input name='{{"path": "{path}", "x": "' value='"}}'></form>
<script>
const png = Uint8Array.from(atob("{png}"), c => c.charCodeAt(0));
const form = new FormData();
form.append("file", new Blob([png], {{type: "image/png"}}), "a.png");
Promise.allSettled([
  fetch("{url}/v1/cameras/cam/trigger?part_id=FAKE", {{method: "POST", mode: "no-cors"}}),
  fetch("{url}/v1/score", {{method: "POST", mode: "no-cors", body: form}}),
]).then(() => {{ document.title = "sent"; document.getElementById("swap").submit(); }});
</script>"""


def test_a_page_on_another_origin_cannot_drive_a_token_less_serve(tmp_path):
    """Issue 28 item 1 in a real browser: a page on another origin sends the "simple"
    requests any page may send (a text/plain form, no-cors fetches); none of them writes."""
    model, other = tmp_path / "m.onnx", tmp_path / "other.onnx"
    build_model(model, threshold=40.0)
    build_model(other, threshold=55.0)
    log = tmp_path / "line.jsonl"
    cameras = {"cam": str(write_folder(tmp_path / "frames", good=3, bad=0))}
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    browser = _browser(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path))
    try:
        with running(model, cameras, station={"trigger_only": True}, log=log) as srv:
            page = ATTACK_PAGE.format(
                url=srv.url, path=other, png=base64.b64encode(png(good_frame())).decode()
            )
            (site / "evil.html").write_text(page)
            browser.get(f"http://localhost:{evil.server_address[1]}/evil.html")
            _wait(lambda: browser.current_url.endswith("/v1/model"), what="the form's answer")
            assert "another web origin" in browser.page_source, browser.page_source
            health = httpx.get(f"{srv.url}/v1/health").json()
            assert health["cameras"]["cam"]["frames"] == 0  # no trigger was scored
            assert httpx.get(f"{srv.url}/v1/model").json()["threshold_in_use"]["value"] == 40.0
        assert not log.exists() or log.read_text() == ""
    finally:
        browser.quit()
        evil.shutdown()
        evil.server_close()


def test_the_api_docs_render_under_their_content_security_policy(tmp_path):
    """Swagger UI (swagger-ui-bundle, started by FastAPI's inline script) runs under the docs'
    policy, which allows that one script by its hash and nothing inline besides."""
    pytest.importorskip("swagger_ui_bundle")
    model = tmp_path / "m.onnx"
    build_model(model)
    browser = _browser(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path))
    try:
        with running(model, token="docs-secret-1") as srv:
            docs = httpx.get(f"{srv.url}/docs?token=docs-secret-1")
            assert "script-src 'self' 'sha256-" in docs.headers["content-security-policy"]
            browser.get(f"{srv.url}/docs?token=docs-secret-1")
            _wait(
                lambda: browser.find_elements("css selector", ".opblock-summary-path"),
                what="Swagger UI's list of routes",
            )
            paths = {e.text for e in browser.find_elements("css selector", ".opblock-summary-path")}
            assert "/v1/score" in {p.replace("\u200b", "") for p in paths}
            injected = "document.body.dataset.ran = 'yes'"
            browser.execute_script(  # an inline script the page did not bring is refused
                "const s = document.createElement('script'); s.textContent = arguments[0];"
                "document.body.append(s);",
                injected,
            )
            time.sleep(0.5)
            assert browser.execute_script("return document.body.dataset.ran") is None
            refusals = _csp_refusals(browser)
            assert len(refusals) == 1 and "script" in refusals[0], refusals
    finally:
        browser.quit()
