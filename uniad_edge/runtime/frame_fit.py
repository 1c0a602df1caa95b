"""Which frames a model can judge at all: one rule for `run`, `serve` and `calibrate`.

Every frame is resized to the model's input, so any size "works"; but a 1x1 or a 20000x20
image scored a confident OK. A frame with a side under 1/MAX_UPSCALE of the model input's side
is blown up from almost no pixels, and one whose aspect ratio differs from the input's by more
than MAX_STRETCH is squashed until a defect no longer looks like one: neither score says
anything, so such a frame's verdict is ERROR with this reason (never OK). Within the limits a
camera frame of another shape (16:9 into a square input is 1.8x) is scored as before.
"""

from __future__ import annotations

MAX_UPSCALE = 8
"""A side below input side / 8 (28 px for a 224 model, under two pixels per feature token)."""
MAX_STRETCH = 4.0
"""Frame aspect over input aspect (or its inverse) beyond this: crop a region with --roi."""


def frame_problem(frame_hw: tuple[int, int], input_hw: tuple[int, int]) -> str | None:
    """Why a frame of `frame_hw` (height, width) cannot be judged by a model of `input_hw`,
    or None when it can."""
    fh, fw = int(frame_hw[0]), int(frame_hw[1])
    ih, iw = int(input_hw[0]), int(input_hw[1])
    size = f"frame {fw}x{fh}"
    stretch = (fw / fh) / (iw / ih)
    stretch = max(stretch, 1.0 / stretch)
    if stretch > MAX_STRETCH:
        return (
            f"{size} would be stretched {stretch:.0f}x to the model's {iw}x{ih} shape (limit "
            f"{MAX_STRETCH:g}x), which distorts any defect; crop a region of the model's shape "
            "(--roi)"
        )
    if fh * MAX_UPSCALE < ih or fw * MAX_UPSCALE < iw:
        return (
            f"{size} is far smaller than the model's {iw}x{ih} input (a side under "
            f"1/{MAX_UPSCALE} of it): upscaled, it holds no detail to judge; send the camera's "
            "full-resolution frame"
        )
    return None
