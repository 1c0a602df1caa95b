"""Stress frames: the inputs most likely to push activations to their extremes.

A float16 export is checked on these besides its verification frames, because a camera will
one day show a blown-out, black, saturated or high-contrast frame that no dataset sample looks
like. The export's range contract, the GPU check and the tests all use this one set.
"""

from __future__ import annotations

import cv2
import numpy as np

SATURATED_BGR = {
    "red": (0, 0, 255),
    "green": (0, 255, 0),
    "blue": (255, 0, 0),
    "magenta": (255, 0, 255),
    "cyan": (255, 255, 0),
    "yellow": (0, 255, 255),
}
CELL = 8
"""Checkerboard cell and stripe width in pixels: edges at every stage's stride (up to 32)."""


def _checkerboard(h: int, w: int) -> np.ndarray:
    rows, cols = np.indices((h, w))
    return (((rows // CELL + cols // CELL) % 2) * 255).astype(np.uint8)


def _stripes(h: int, w: int, vertical: bool) -> np.ndarray:
    index = np.indices((h, w))[1 if vertical else 0]
    return (((index // (CELL // 2)) % 2) * 255).astype(np.uint8)


def _grey(plane: np.ndarray) -> np.ndarray:
    return np.repeat(plane[..., None], 3, axis=-1)


def _defect_frames(h: int, w: int) -> dict[str, np.ndarray]:
    """One synthetic defect of each kind, rendered at the input size."""
    from .data.synth import CLASSES, render

    frames: dict[str, np.ndarray] = {}
    kinds = sorted({kind for spec in CLASSES for kind in spec.defects})
    for index, kind in enumerate(kinds):
        spec = next(c for c in CLASSES if kind in c.defects)
        image = render(spec.name, max(h, w), (17, index), kind)[0]
        frames[f"defect-{spec.name}-{kind}"] = cv2.resize(image, (w, h))
    return frames


def stress_frames(input_size: tuple[int, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Named uint8 BGR frames [H, W, 3]: white, black, saturated colours, checkerboard,
    stripes, uniform noise and one synthetic defect of each kind."""
    h, w = input_size
    frames = {
        "white": np.full((h, w, 3), 255, np.uint8),
        "black": np.zeros((h, w, 3), np.uint8),
    }
    for name, bgr in SATURATED_BGR.items():
        frames[f"saturated-{name}"] = np.broadcast_to(np.array(bgr, np.uint8), (h, w, 3)).copy()
    frames["checkerboard"] = _grey(_checkerboard(h, w))
    frames["stripes-vertical"] = _grey(_stripes(h, w, vertical=True))
    frames["stripes-horizontal"] = _grey(_stripes(h, w, vertical=False))
    colour_board = np.zeros((h, w, 3), np.uint8)
    colour_board[_checkerboard(h, w) > 0] = SATURATED_BGR["magenta"]
    colour_board[_checkerboard(h, w) == 0] = SATURATED_BGR["green"]
    frames["checkerboard-magenta-green"] = colour_board
    frames["noise"] = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    frames.update(_defect_frames(h, w))
    return frames


def stress_batch(input_size: tuple[int, int], seed: int = 0) -> tuple[list[str], np.ndarray]:
    """`stress_frames` as (names, one contiguous uint8 [N, H, W, 3] array)."""
    frames = stress_frames(input_size, seed)
    return list(frames), np.ascontiguousarray(np.stack(list(frames.values())))
