"""`export --frame-size WxH [--roi X,Y,W,H]`: the crop and the resize baked into the graph.

The graph then takes whole camera frames (uint8, one host-to-device copy) and prepares them on
the device that runs the model. Its Resize interpolates in float32 from the uint8 frame, while
the host path (`cv2.resize`, INTER_LINEAR) rounds the resized image back to uint8 first: the
two differ by up to half a grey level per pixel, which `check_host_parity` holds to the
export's own tolerance (`EXPORT_LIMITS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import UniadError
from ..parity import EXPORT_LIMITS, Parity, compare
from .verify import run_torch


@dataclass(frozen=True)
class FrameGeometry:
    """Camera frames of `size` (height, width), cropped to `roi` (x, y, width, height)."""

    size: tuple[int, int]
    roi: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        h, w = self.size
        if h < 1 or w < 1:
            raise UniadError(f"--frame-size must be positive, got {w}x{h}")
        if self.roi is None:
            return
        x, y, rw, rh = self.roi
        if x < 0 or y < 0 or rw < 1 or rh < 1 or x + rw > w or y + rh > h:
            raise UniadError(
                f"--roi {x},{y},{rw},{rh} does not fit the {w}x{h} frame; give X,Y,WIDTH,HEIGHT "
                "inside --frame-size"
            )


def parse_roi(text: str) -> tuple[int, int, int, int]:
    """ "100,50,640,480" -> (100, 50, 640, 480): x, y, width, height in frame pixels."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise UniadError(
            f"--roi takes X,Y,WIDTH,HEIGHT, e.g. 320,0,720,720, got {text!r}"
        ) from None
    return x, y, w, h


def geometry(
    frame_size: tuple[int, int] | None, roi: tuple[int, int, int, int] | None
) -> FrameGeometry | None:
    """From the CLI's (width, height) and ROI; None when frames arrive at the input size."""
    if frame_size is None:
        if roi is not None:
            raise UniadError("--roi needs --frame-size: the crop is given in frame pixels")
        return None
    width, height = frame_size
    return FrameGeometry((height, width), roi)


def camera_frames(images: np.ndarray, frame: FrameGeometry) -> np.ndarray:
    """Verification images (at the input size) scaled up to whole camera frames."""
    h, w = frame.size
    return np.ascontiguousarray(
        np.stack([cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR) for image in images])
    )


def host_prepared(frames: np.ndarray, frame: FrameGeometry, size: tuple[int, int]) -> np.ndarray:
    """What the runtime does without `--frame-size`: crop, then cv2 bilinear to `size`."""
    x, y, w, h = frame.roi or (0, 0, frames.shape[2], frames.shape[1])
    out = np.empty((len(frames), *size, 3), np.uint8)
    for slot, image in zip(out, frames, strict=True):
        cv2.resize(
            image[y : y + h, x : x + w], size[::-1], dst=slot, interpolation=cv2.INTER_LINEAR
        )
    return out


def check_host_parity(
    in_graph: object, on_host: object, frames: np.ndarray, frame: FrameGeometry
) -> Parity:
    """The baked graph's model on whole frames vs the plain one on host-prepared frames (both
    PyTorch); `UniadError` beyond `EXPORT_LIMITS`."""
    size = on_host.model.preset.input_size  # type: ignore[attr-defined]
    parity = compare(
        run_torch(on_host, host_prepared(frames, frame, size)), run_torch(in_graph, frames)
    )
    broken = parity.failures(EXPORT_LIMITS)
    if broken:
        raise UniadError(
            f"--frame-size graph disagrees with host-side preparation: {'; '.join(broken)}; "
            "nothing was written"
        )
    return parity
