"""NG evidence for the dashboard: the newest NG overlays in the save folder, and the only files
the service serves from disk (images inside that folder, nothing else).

Camera evidence is written by the station's evidence sink (`CAMERA_INDEX_overlay.jpg` and
`_frame.png`); the API's NG images are written here, atomically, as `api_TIME_SEQ_...`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import UniadError
from ..fileio import atomic_path, write_bytes_atomic
from ..runtime.detector import Detection
from ..runtime.recorder import SAFE_NAME

SERVED_SUFFIXES = {".png", ".jpg"}
OVERLAY = "_overlay.jpg"
FRAME = "_frame.png"


class Gallery:
    """The newest `size` NG items, seeded from the folder so a restart keeps the gallery."""

    def __init__(self, root: Path, size: int = 24) -> None:
        self.root = Path(root)
        with atomic_path(self.root / ".write-test") as probe:  # unwritable: fail at start
            probe.write_bytes(b"")
        (self.root / ".write-test").unlink()
        self.root = self.root.resolve()
        self._items: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()
        for path in sorted(self.root.glob(f"*{OVERLAY}"), key=_mtime)[-size:]:
            frame = path.name[: -len(OVERLAY)] + FRAME
            item = {"gallery": path.name, "frame": frame, "time": _mtime(path), "camera": None}
            self._items.appendleft(item)

    def save(self, event: dict[str, Any], image: np.ndarray, detection: Detection) -> str:
        """Write an API image and its overlay; the overlay's name."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(event["time"]))
        stem = f"{SAFE_NAME.sub('_', event['camera'])}_{stamp}_{event['seq']:06d}"
        write_bytes_atomic(self.root / f"{stem}{FRAME}", _encode(".png", image))
        write_bytes_atomic(
            self.root / f"{stem}{OVERLAY}", _encode(".jpg", detection.overlay(image))
        )
        return f"{stem}{OVERLAY}"

    def has(self, name: str) -> bool:
        return self.resolve(name) is not None

    def add(self, event: dict[str, Any]) -> None:
        """Remember an NG event whose `gallery` overlay is on disk."""
        item = {**event, "frame": event["gallery"][: -len(OVERLAY)] + FRAME}
        with self._lock:
            self._items.appendleft(item)

    def recent(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)

    def resolve(self, relative: str) -> Path | None:
        """The file `relative` names if it is an image inside the root, else None."""
        try:
            path = (self.root / relative).resolve()
        except (OSError, ValueError):
            return None
        if not path.is_relative_to(self.root) or path.suffix.lower() not in SERVED_SUFFIXES:
            return None
        return path if path.is_file() else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _encode(ext: str, image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(ext, image)
    if not ok:
        raise UniadError(f"OpenCV could not encode a {image.shape} image as {ext}")
    return data.tobytes()
