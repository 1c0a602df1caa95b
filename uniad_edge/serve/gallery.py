"""NG evidence on disk (the frame as PNG, its heatmap overlay as JPEG) and the list behind the
dashboard's gallery. Files are written atomically and served only from inside the save folder.
"""

from __future__ import annotations

import re
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

SERVED_SUFFIXES = {".png", ".jpg"}


class Gallery:
    """Saves NG frames under `root/<camera>/` and remembers the newest `size` of them."""

    def __init__(self, root: Path, size: int = 24) -> None:
        self.root = Path(root)
        with atomic_path(self.root / ".write-test") as probe:  # unwritable: fail at start
            probe.write_bytes(b"")
        (self.root / ".write-test").unlink()
        self.root = self.root.resolve()
        self._items: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def save(self, event: dict[str, Any], image: np.ndarray, detection: Detection) -> str:
        """Write one NG image and its overlay; return the overlay's path relative to the root."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(event["time"]))
        folder = re.sub(r"[^A-Za-z0-9_-]", "_", event["camera"]) or "_"
        stem = f"{folder}/{stamp}_{event['seq']:08d}"
        write_bytes_atomic(self.root / f"{stem}_frame.png", _encode(".png", image))
        overlay = detection.overlay(image)
        write_bytes_atomic(self.root / f"{stem}_overlay.jpg", _encode(".jpg", overlay))
        item = {**event, "gallery": f"{stem}_overlay.jpg", "frame": f"{stem}_frame.png"}
        with self._lock:
            self._items.appendleft(item)
        return item["gallery"]

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


def _encode(ext: str, image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(ext, image)
    if not ok:
        raise UniadError(f"OpenCV could not encode a {image.shape} image as {ext}")
    return data.tobytes()
