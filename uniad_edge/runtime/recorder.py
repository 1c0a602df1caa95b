"""Keep what a station must be able to prove later: a JSONL record per frame and NG evidence.

Each log line is flushed to the OS as soon as it is written, so a crash or kill loses nothing
already scored (a power cut can still lose the OS cache). NG frames and their heatmap overlays
are written atomically, so a folder never holds half an image.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from ..errors import UniadError
from ..fileio import atomic_path, write_bytes_atomic
from .capture import Frame
from .detector import Detection


def frame_record(
    frame: Frame, detection: Detection, source: str, postprocess_ms: float
) -> dict[str, Any]:
    """The JSONL record of one scored frame."""
    return {
        "index": frame.index,
        "timestamp": frame.timestamp,
        "time": datetime.fromtimestamp(frame.timestamp, timezone.utc).isoformat(),
        "source": source,
        "name": frame.name,
        "score": detection.score,
        "normalized_score": detection.normalized_score,
        "threshold": detection.threshold,
        "verdict": detection.verdict,
        "latency_ms": {
            "capture": round(frame.capture_ms, 3),
            "preprocess": round(detection.preprocess_ms, 3),
            "inference": round(detection.inference_ms, 3),
            "postprocess": round(postprocess_ms, 3),
        },
    }


class JsonlLog:
    """Append-only JSONL file: a restarted station adds to its log instead of erasing it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise UniadError(f"cannot write log {self.path}: {exc.strerror or exc}") from None

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            raise UniadError(f"log {self.path} is closed")
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class EvidenceSaver:
    """Writes NG frames (PNG, lossless) and their overlays (JPEG) into one folder."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.saved = 0
        # Probe now: an unwritable folder must fail at start, not at the first defect hours later.
        with atomic_path(self.folder / ".write-test") as probe:
            probe.write_bytes(b"")
        (self.folder / ".write-test").unlink()

    def save(self, frame: Frame, detection: Detection) -> None:
        stem = f"{frame.index:08d}"
        write_bytes_atomic(self.folder / f"{stem}_frame.png", _encode(".png", frame.image))
        overlay = detection.overlay(frame.image)
        write_bytes_atomic(self.folder / f"{stem}_overlay.jpg", _encode(".jpg", overlay))
        self.saved += 1


def _encode(ext: str, image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(ext, image)
    if not ok:
        raise UniadError(f"OpenCV could not encode a {image.shape} image as {ext}")
    return data.tobytes()
