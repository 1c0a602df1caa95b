"""`export --frame-size WxH [--roi X,Y,W,H]`: the crop and the resize baked into the graph.

The graph then takes whole camera frames (uint8, one host-to-device copy) and prepares them on
the device that runs the model. Its Resize interpolates in float32 from the uint8 frame, while
the host path (`cv2.resize`, INTER_LINEAR) rounds the resized image back to uint8 (and weighs
in 11-bit fixed point): up to 0.75 grey level per pixel. On a trained model that rounding alone
moves the map by more than the export's limit (5-epoch mvtec-224: relative L2 2.5e-3 at
320x240 and 1280x720; random-init: 3.4e-4), while the same cv2 resize in float32 agrees with
the graph to 7e-8. So `check_host_parity` holds the graph to `EXPORT_LIMITS` against that
float32 host resize (same geometry, no rounding: what catches a wrong crop, scale or
interpolation), and records the uint8 host path's difference, which is the host's rounding,
not an error of the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import UniadError
from ..parity import EXPORT_LIMITS, Parity, compare
from .verify import run_torch

MAX_FRAME_SIDE = 4096
"""Largest --frame-size side: 4K UHD and 12 MP sensors fit. The export runs the graph on whole
frames (a 4096x4096 frame is 48 MiB as uint8, 192 MiB as float32, three at once in the parity
check); 20000x20000 grew to 21 GB and was killed. Larger cameras: resize on the host."""


@dataclass(frozen=True)
class FrameGeometry:
    """Camera frames of `size` (height, width), cropped to `roi` (x, y, width, height)."""

    size: tuple[int, int]
    roi: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        h, w = self.size
        if h < 1 or w < 1:
            raise UniadError(f"--frame-size must be positive, got {w}x{h}")
        if max(h, w) > MAX_FRAME_SIDE:
            raise UniadError(
                f"--frame-size {w}x{h} is larger than {MAX_FRAME_SIDE} px a side; export without "
                "--frame-size and let the runtime resize such frames on the host"
            )
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
    """Verification images (at the input size) scaled up to whole camera frames, written into
    one array (a list of frames and their stack would hold them twice)."""
    h, w = frame.size
    out = np.empty((len(images), h, w, 3), np.uint8)
    for slot, image in zip(out, images, strict=True):
        cv2.resize(image, (w, h), dst=slot, interpolation=cv2.INTER_LINEAR)
    return out


class CameraFrames:
    """Images at the input size standing for whole camera frames, made a slice at a time
    (`verify.FrameBatch`): the INT8 export's calibration and gate images at 4096x4096 would
    otherwise hold 100 frames of 48 MiB at once."""

    def __init__(self, images: np.ndarray, frame: FrameGeometry) -> None:
        self.images = images
        self.frame = frame

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: slice, /) -> np.ndarray:
        return camera_frames(self.images[index], self.frame)


def host_prepared(frames: np.ndarray, frame: FrameGeometry, size: tuple[int, int]) -> np.ndarray:
    """What the runtime does without `--frame-size`: crop, then cv2 bilinear to `size`."""
    x, y, w, h = frame.roi or (0, 0, frames.shape[2], frames.shape[1])
    out = np.empty((len(frames), *size, 3), np.uint8)
    for slot, image in zip(out, frames, strict=True):
        cv2.resize(
            image[y : y + h, x : x + w], size[::-1], dst=slot, interpolation=cv2.INTER_LINEAR
        )
    return out


def host_resized(frames: np.ndarray, frame: FrameGeometry, size: tuple[int, int]) -> np.ndarray:
    """`host_prepared` in float32: the same crop and cv2 bilinear resize, not rounded to uint8."""
    x, y, w, h = frame.roi or (0, 0, frames.shape[2], frames.shape[1])
    out = np.empty((len(frames), *size, 3), np.float32)
    for slot, image in zip(out, frames, strict=True):
        crop = image[y : y + h, x : x + w].astype(np.float32)
        slot[...] = cv2.resize(crop, size[::-1], interpolation=cv2.INTER_LINEAR)
    return out


def check_host_parity(
    in_graph: object, on_host: object, frames: np.ndarray, frame: FrameGeometry
) -> tuple[Parity, Parity]:
    """The baked graph's model on whole frames vs the plain one on the host's float32 resize
    (both PyTorch; `UniadError` beyond `EXPORT_LIMITS`), and vs the host's uint8 path (the
    runtime's without --frame-size: its rounding, recorded, not judged)."""
    size = on_host.model.preset.input_size  # type: ignore[attr-defined]
    graph = run_torch(in_graph, frames)
    parity = compare(run_torch(on_host, host_resized(frames, frame, size)), graph)
    broken = parity.failures(EXPORT_LIMITS)
    if broken:
        raise UniadError(
            f"--frame-size graph disagrees with host-side preparation: {'; '.join(broken)}; "
            "nothing was written"
        )
    return parity, compare(run_torch(on_host, host_prepared(frames, frame, size)), graph)
