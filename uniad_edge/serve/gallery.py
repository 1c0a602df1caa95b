"""NG evidence for the dashboard: the newest NG overlays in the save folder, and the only files
the service serves from disk (images inside that folder, nothing else).

The gallery is a sink of the station: the station's evidence sink (`recorder.EvidenceSaver`)
writes every NG frame, a camera's or an API request's, and its verdict names the files
(`Verdict.evidence`); the gallery lists those. Files end in `recorder.FRAME_SUFFIX` /
`OVERLAY_SUFFIX`.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import Any

from ..runtime.recorder import FRAME_SUFFIX as FRAME
from ..runtime.recorder import OVERLAY_SUFFIX as OVERLAY
from ..runtime.sinks import Sink, Verdict

SERVED_SUFFIXES = {".png", ".jpg"}


class Gallery(Sink):
    """The newest `size` NG items, seeded from the folder so a restart keeps the gallery."""

    name = "gallery"

    def __init__(self, root: Path, size: int = 24) -> None:
        self.root = Path(root).resolve()
        self._items: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()
        # oldest first; files of one camera written in the same clock tick sort by their names
        by_age = sorted(self.root.glob(f"*{OVERLAY}"), key=lambda path: (_mtime(path), path.name))
        for path in by_age[-size:]:
            frame = path.name[: -len(OVERLAY)] + FRAME
            item = {"gallery": path.name, "frame": frame, "timestamp": _mtime(path), "camera": None}
            self._items.appendleft(item)

    def emit(self, verdict: Verdict) -> None:
        """Remember a verdict whose evidence the station saved into this folder."""
        evidence = verdict.evidence or {}
        overlay = evidence.get("overlay")
        if overlay is None or not self.has(overlay):
            return
        item = verdict.document() | {"gallery": overlay, "frame": evidence["frame"]}
        with self._lock:
            self._items.appendleft(item)

    def has(self, name: str) -> bool:
        return self.resolve(name) is not None

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
