"""Aravis's GigE Vision camera simulator on 127.0.0.1, for the `gige://` tests and benchmark.

`arv-fake-gv-camera-0.8` speaks the real protocol (GVCP control on UDP 3956, GVSP stream) and
cannot be given another port, so a file lock serialises every user of 127.0.0.1:3956 on this
machine (two test runs never race for it) and a port that another process holds is a skip with
the reason. The child gets default SIGINT/SIGTERM handlers of its own (a test run started from
a background job ignores SIGINT, and the child would inherit that) and is always ended.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from uniad_edge.runtime.capture.gige import discover

FAKE = shutil.which("arv-fake-gv-camera-0.8")
GVCP_PORT = 3956
LOCK = Path(tempfile.gettempdir()) / "uniad-edge-gvcp-127.0.0.1-3956.lock"
LOCK_WAIT_S = 300.0
SERIAL = "GV01"
DEVICE = f"Aravis-Fake-{SERIAL}"


def aravis_or_skip():
    """The Aravis module, or a skip saying what to install."""
    try:
        import gi

        gi.require_version("Aravis", "0.8")
        from gi.repository import Aravis
    except (ImportError, ValueError) as exc:
        pytest.skip(
            f"Aravis through PyGObject is not installed ({exc}): apt-get install "
            'gir1.2-aravis-0.8 libgirepository1.0-dev libcairo2-dev; pip install "pygobject<3.51"'
        )
    return Aravis


def _child_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _port_free() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", GVCP_PORT))
        except OSError:
            return False
    return True


class FakeGigeCamera:
    """The simulator as camera `DEVICE`; `kill()` pulls its plug, `start()` powers it up."""

    def __init__(self, workdir: Path, lost_per_mille: int = 0) -> None:
        if FAKE is None:
            pytest.skip("arv-fake-gv-camera-0.8 is not installed (apt-get install aravis-tools)")
        aravis_or_skip()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.lost_per_mille = lost_per_mille  # GVSP packets the simulator drops
        self._lock = LOCK.open("a")
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self._lock.close()
                    pytest.skip(f"another run held {LOCK} for {LOCK_WAIT_S:g} s")
                time.sleep(0.2)
        try:
            self.start()
        except BaseException:
            self.close()
            raise

    def start(self) -> None:
        if not _port_free():
            self.close()
            pytest.skip("UDP 127.0.0.1:3956 (GVCP) is held by another process")
        log = (self.workdir / "fake-gv-camera.log").open("ab")
        self.proc = subprocess.Popen(
            [FAKE, "-i", "127.0.0.1", "-s", SERIAL, "-r", str(self.lost_per_mille)],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_child_signals,  # noqa: PLW1509 (only signal handlers, no locks)
        )
        log.close()
        deadline = time.monotonic() + 15
        while DEVICE not in self.devices():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                pytest.skip(f"the GigE Vision simulator did not come up: {self.log_tail()}")

    def devices(self) -> list[str]:
        """Device ids found, through the product's discovery: it holds the lock that keeps
        this thread's listing apart from a station's reader reopening the camera."""
        return [camera.device for camera in discover(details=False)]

    def log_tail(self) -> str:
        path = self.workdir / "fake-gv-camera.log"
        return path.read_text(errors="replace")[-300:] if path.exists() else ""

    def kill(self) -> None:
        """Power loss: SIGKILL, nothing said on the wire."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        self.stop()
        if not self._lock.closed:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()


def env_with_path() -> dict[str, str]:
    """The environment for a `uniad-edge` child that must use this checkout."""
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
