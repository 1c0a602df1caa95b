"""A short synthetic "production line" video: parts pass under a fixed camera, one at a time.

Each part (a test image of the synthetic dataset, good or defective) is held for a few frames
with the small shifts and flicker a real station shows. The ground truth of every frame goes
into a JSON sidecar so the run's verdicts can be checked frame by frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..data import Sample, load_image
from ..errors import UniadError
from ..fileio import atomic_path, write_json_atomic

FOURCC = "mp4v"


@dataclass
class LineVideo:
    path: Path
    truth_path: Path
    frames: int
    parts: int
    defective_parts: int
    fps: float


def pick_parts(samples: list[Sample], per_class: int, seed: int) -> list[Sample]:
    """`per_class` good and `per_class` defective parts of every class, in a shuffled line."""
    rng = np.random.default_rng(seed)
    chosen: list[Sample] = []
    for name in sorted({s.class_name for s in samples}):
        for label in (0, 1):
            pool = [s for s in samples if s.class_name == name and s.label == label]
            picks = rng.permutation(len(pool))[:per_class]
            chosen.extend(pool[i] for i in picks)
    return [chosen[i] for i in rng.permutation(len(chosen))]


def _camera_frame(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """The part as a camera sees it: resized, shifted by a pixel or two, slight flicker."""
    frame = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    dx, dy = rng.integers(-2, 3, size=2)
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    frame = cv2.warpAffine(frame, shift, (size, size), borderMode=cv2.BORDER_REFLECT)
    gain = 1.0 + rng.normal(0.0, 0.01)
    return cv2.convertScaleAbs(frame, alpha=gain)


def _write_frames(
    parts: list[Sample],
    path: Path,
    frames_per_part: int,
    size: int,
    fps: float,
    rng: np.random.Generator,
    truth: list[dict[str, object]],
) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC), fps, (size, size))
    if not writer.isOpened():
        raise UniadError(f"OpenCV cannot write {FOURCC} video to {path.parent}; check the folder")
    try:
        for part_index, sample in enumerate(parts):
            image = load_image(sample)
            for _ in range(frames_per_part):
                writer.write(_camera_frame(image, size, rng))
                truth.append(
                    {
                        "frame": len(truth),
                        "part": part_index,
                        "class_name": sample.class_name,
                        "defect": sample.defect,
                        "label": sample.label,
                        "image": str(sample.path),
                    }
                )
    finally:
        writer.release()


def render_line_video(
    parts: list[Sample],
    out: Path,
    frames_per_part: int = 3,
    size: int = 448,
    fps: float = 10.0,
    seed: int = 0,
) -> LineVideo:
    """Write `out` (MP4) and `out.with_suffix('.json')` with each frame's part and label."""
    if not parts:
        raise UniadError("no parts to render into the line video; the test split is empty")
    rng = np.random.default_rng(seed)
    truth: list[dict[str, object]] = []
    with atomic_path(out) as tmp:
        video_tmp = tmp.with_suffix(out.suffix)  # OpenCV picks the container from the suffix
        try:
            _write_frames(parts, video_tmp, frames_per_part, size, fps, rng, truth)
            video_tmp.replace(tmp)
        finally:
            video_tmp.unlink(missing_ok=True)
    truth_path = out.with_suffix(".json")
    write_json_atomic(truth_path, truth)
    return LineVideo(out, truth_path, len(truth), len(parts), sum(s.label for s in parts), fps)
