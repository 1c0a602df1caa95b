"""Turn whatever a camera or caller hands over into the uint8 BGR frame the model was trained on.

Conversions are explicit and lossless where possible; anything ambiguous is refused with a
`UniadError`, because a silently mis-converted frame is scored as garbage, not rejected.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import UniadError


def to_bgr8(frame: object, bit_depth: int | None = None) -> np.ndarray:
    """uint8 HxWx3 BGR view or copy of `frame`.

    Accepted: uint8 BGR (HxWx3, returned as is), grey (HxW or HxWx1), BGRA (HxWx4). uint16 frames
    are converted only when the sensor's `bit_depth` (9..16) is given, by dropping the low
    `bit_depth - 8` bits: a 12-bit camera stores 0..4095 in uint16, a PNG 0..65535, and
    guessing wrong would darken or saturate the frame. Float, signed, bool and other types are
    refused, as are empty frames and frames that are not 2-D or 3-D.
    """
    if frame is None:
        raise UniadError("frame is None: the source returned no image")
    if not isinstance(frame, np.ndarray):
        raise UniadError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.size == 0:
        raise UniadError(f"frame is empty (shape {frame.shape})")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise UniadError(
            f"frame shape {frame.shape} is not an image; expected HxW, HxWx1, HxWx3 (BGR) "
            "or HxWx4 (BGRA)"
        )
    if frame.dtype == np.uint16:
        frame = _from_uint16(frame, bit_depth)
    elif frame.dtype != np.uint8:
        raise UniadError(
            f"frame dtype {frame.dtype} is not supported; pass uint8 BGR (scale float images "
            "to 0..255 and convert with .astype(np.uint8) yourself)"
        )
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def _from_uint16(frame: np.ndarray, bit_depth: int | None) -> np.ndarray:
    if bit_depth is None:
        raise UniadError(
            "frame is 16-bit (uint16); say how many bits the sensor uses with bit_depth= "
            "(e.g. 12 for a 12-bit camera, 16 for a full-range PNG) or convert it to uint8"
        )
    if not 9 <= bit_depth <= 16:
        raise UniadError(f"bit_depth must be 9..16 for uint16 frames, got {bit_depth}")
    if int(frame.max()) >> bit_depth:
        raise UniadError(
            f"16-bit frame has values above {(1 << bit_depth) - 1}, the maximum for "
            f"bit_depth={bit_depth}; pass the sensor's real bit depth"
        )
    return (frame >> (bit_depth - 8)).astype(np.uint8)
