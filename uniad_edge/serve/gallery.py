"""NG evidence for the dashboard: the newest NG overlays in the save folder, and the only files
the service serves from disk (images inside that folder, nothing else).

Camera evidence is written by the station's evidence sink (`recorder.EvidenceSaver`, whose
record names the files); the API's NG images are written here the same way, as
`api_TIME_SEQ` (`recorder.evidence_stem`). Both end in `recorder.FRAME_SUFFIX` / `OVERLAY_SUFFIX`.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.detector import Detection
from ..runtime.recorder import FRAME_SUFFIX as FRAME
from ..runtime.recorder import OVERLAY_SUFFIX as OVERLAY
from ..runtime.recorder import EvidenceSaver, evidence_stem

SERVED_SUFFIXES = {".png", ".jpg"}


class Gallery:
    """The newest `size` NG items, seeded from the folder so a restart keeps the gallery."""

    def __init__(self, root: Path, size: int = 24) -> None:
        self._saver = EvidenceSaver(root)  # an unwritable folder fails here, at start
        self.root = Path(root).resolve()
        self._items: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()
        # oldest first; files of one camera written in the same clock tick sort by their names
        by_age = sorted(self.root.glob(f"*{OVERLAY}"), key=lambda path: (_mtime(path), path.name))
        for path in by_age[-size:]:
            frame = path.name[: -len(OVERLAY)] + FRAME
            item = {"gallery": path.name, "frame": frame, "time": _mtime(path), "camera": None}
            self._items.appendleft(item)

    def save(self, event: dict[str, Any], image: np.ndarray, detection: Detection) -> str:
        """Write an API image and its overlay (never over an existing file); the overlay's name."""
        stem = evidence_stem(event["camera"], event["time"], event["seq"])
        return self._saver.save(stem, detection, image)["overlay"]

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
