"""Frame preparation: camera frames resized into the model's input batch, in place.

The batch buffer is allocated once by its owner; each frame is resized straight into its slot
(no per-frame allocation). When a batch holds several large frames, a small thread pool
resizes them side by side: OpenCV releases the GIL, and one core cannot keep up with a fast
engine at 1280x720 (see benchmarks/README.md, "Frame path").
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from ..errors import UniadError
from ..metadata import ModelMetadata

MAX_WORKERS = 4
# Below this many source pixels per batch a pool's hand-over costs more than it saves.
POOL_MIN_PIXELS = 2_000_000


def usable_cores() -> int:
    """Cores this process may run on (the container's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class FramePreparer:
    """Resizes BGR frames (bilinear, as the model was trained) into slots of a batch buffer.

    `workers` threads at most (default: up to MAX_WORKERS of the usable cores); 1 disables
    the pool. The pool starts on first use and ends with `close`.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers if workers is not None else min(MAX_WORKERS, usable_cores()))
        self._pool: ThreadPoolExecutor | None = None

    def into(self, buffer: np.ndarray, images: Sequence[np.ndarray]) -> None:
        """Fill buffer[i] with images[i] at the buffer's height and width."""
        pixels = sum(image.shape[0] * image.shape[1] for image in images)
        if self.workers == 1 or len(images) < 2 or pixels < POOL_MIN_PIXELS:
            for slot, image in zip(buffer, images, strict=False):
                fill_slot(slot, image)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="uniad-prepare")
        list(self._pool.map(fill_slot, buffer[: len(images)], images))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def fill_slot(slot: np.ndarray, image: np.ndarray) -> None:
    """One frame into one preallocated slot: a copy at the same size, else a bilinear resize."""
    h, w = slot.shape[:2]
    if image.shape[:2] == (h, w):
        slot[...] = image
    else:
        cv2.resize(image, (w, h), dst=slot, interpolation=cv2.INTER_LINEAR)


def check_frame_size(images: Sequence[np.ndarray], metadata: ModelMetadata) -> None:
    """A graph exported with `--frame-size` crops and resizes in itself: it takes frames of
    exactly that size, and a camera sending others is told so, not silently stretched."""
    assert metadata.frame_size is not None
    h, w = metadata.frame_size
    for image in images:
        if image.shape[:2] != (h, w):
            got_h, got_w = image.shape[:2]
            raise UniadError(
                f"camera frame is {got_w}x{got_h} but model {metadata.name!r} was exported for "
                f"{w}x{h} frames (export --frame-size); set the camera to {w}x{h}, drop its "
                "roi, or export without --frame-size to resize on the host"
            )
