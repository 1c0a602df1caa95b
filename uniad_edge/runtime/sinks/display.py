"""Display sink: one OpenCV window per camera with the heatmap overlay; q or Esc stops."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import cv2

from ...errors import UniadError
from .base import Sink, SinkContext, Verdict

WINDOW = "uniad-edge"


def check_display() -> None:
    """--show needs a screen; say so at start instead of crashing in cv2.imshow."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise UniadError("--show needs a display (DISPLAY is not set); run headless without --show")
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    except cv2.error as exc:
        raise UniadError(
            f"--show: OpenCV cannot open a window ({exc.err}); install opencv-python "
            "(not -headless) or run without --show"
        ) from None


class DisplaySink(Sink):
    name = "display"

    def __init__(self, stop: Callable[[str], None]) -> None:
        check_display()
        self.stop = stop

    def emit(self, verdict: Verdict) -> None:
        if verdict.detection is None or verdict.image is None:
            return
        cv2.imshow(f"{WINDOW} {verdict.camera}", verdict.detection.overlay(verdict.image))
        if (cv2.waitKey(1) & 0xFF) in (ord("q"), 27):
            self.stop("key")

    def close(self) -> None:
        cv2.destroyAllWindows()


def from_context(context: SinkContext) -> DisplaySink | None:
    return DisplaySink(context.stop) if context.config.show else None
