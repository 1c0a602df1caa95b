"""Real services for runtime tests on 127.0.0.1: a Mosquitto broker, an MJPEG HTTP camera,
and an MQTT subscriber that collects what it receives."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import pytest
from onnx_fixtures import good_frame
from ports import free_port

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


PORT_TRIES = 5


class Mosquitto:
    """A Mosquitto broker on a free port, with persistence so sessions survive a restart."""

    def __init__(self, workdir: Path) -> None:
        if MOSQUITTO is None:
            pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.proc: subprocess.Popen | None = None
        for attempt in range(PORT_TRIES):  # a port taken between choosing and binding: again
            self.port = free_port()
            # As root, mosquitto drops to user "mosquitto", which cannot save sessions in a
            # private tmp dir; a broker restart would then lose the subscriber's queued messages.
            stay = "user root\n" if os.geteuid() == 0 else ""
            self.conf.write_text(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                f"persistence_location {workdir}/\nautosave_interval 1\n{stay}"
            )
            self.start(retry=attempt + 1 < PORT_TRIES)
            if self.proc is not None:
                return

    def start(self, retry: bool = False) -> None:
        """Start on `port` (a restart keeps it); with `retry`, a broker that could not bind
        leaves `proc` None for the caller to choose another port."""
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        proc = self.proc
        try:
            wait_port(self.port)
            time.sleep(0.2)  # another server on the port answers too: is ours still running?
            if proc.poll() is None:
                return
        except TimeoutError:
            self.stop()
        assert proc.stderr is not None
        why = proc.stderr.read().decode()[-300:]
        self.proc = None
        if not (retry and "in use" in why.lower()):
            pytest.skip(f"mosquitto did not start: {why}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def url(self, topic: str) -> str:
        return f"mqtt://127.0.0.1:{self.port}/{topic}"


class Subscriber:
    """A persistent-session QoS 1 subscriber; `messages` holds decoded JSON payloads."""

    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as paho

        self.messages: list[dict] = []
        self.ready = threading.Event()
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=f"test-sub-{uuid.uuid4().hex[:8]}",
            clean_session=False,
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = lambda _c, _u, msg: self.messages.append(json.loads(msg.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10), "subscriber never subscribed"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.unique()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages

    def unique(self) -> set[tuple[str, int]]:
        return {(m["camera"], m["index"]) for m in self.messages}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class MjpegCamera:
    """An IP camera serving multipart/x-mixed-replace JPEG frames over HTTP at ~50 fps, behind
    HTTP Basic authentication when given a `user`.

    `stop()` closes the listening socket and every open stream, like a camera losing power;
    `start()` brings it back on the same port.
    """

    def __init__(self, user: str | None = None, password: str = "") -> None:
        self.port = 0  # the first start binds a free port and keeps it for restarts
        self.jpeg = cv2.imencode(".jpg", good_frame((48, 64)))[1].tobytes()
        self.server: ThreadingHTTPServer | None = None
        self.credentials = f"{user}:{password}" if user is not None else None
        self.authorized = 0  # streams served to a client that sent the credentials
        self.start()

    @property
    def url(self) -> str:
        """The stream's URL, with the credentials when the camera requires them."""
        userinfo = f"{self.credentials}@" if self.credentials else ""
        return f"http://{userinfo}127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> None:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if camera.credentials is not None:  # HTTP Basic, as IP cameras ask for it
                    token = base64.b64encode(camera.credentials.encode()).decode()
                    if self.headers.get("Authorization") != f"Basic {token}":
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    camera.authorized += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                try:
                    while camera.server is self.server:
                        self.wfile.write(head % len(camera.jpeg) + camera.jpeg + b"\r\n")
                        time.sleep(0.02)
                except OSError:
                    pass

            def log_message(self, *_args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()
