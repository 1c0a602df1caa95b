"""Synthetic media for runtime tests: videos and image folders of good then defective frames."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
from onnx_fixtures import defect_frame, good_frame

from uniad_edge.runtime.capture import Reader

FRAME_SIZE = (48, 64)


def write_video(
    path: Path, good: int = 12, bad: int = 12, fourcc: str = "mp4v", size=FRAME_SIZE
) -> Path:
    """`good` defect-free frames, then `bad` frames with a bright blob, through a real codec."""
    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} video"
    for i in range(good):
        writer.write(good_frame(size, seed=i))
    for i in range(bad):
        writer.write(defect_frame(size, seed=i))
    writer.release()
    return path


def write_folder(folder: Path, good: int = 6, bad: int = 6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(good):
        cv2.imwrite(str(folder / f"a_good_{i:03d}.png"), good_frame(FRAME_SIZE, seed=i))
    for i in range(bad):
        cv2.imwrite(str(folder / f"b_bad_{i:03d}.png"), defect_frame(FRAME_SIZE, seed=i))
    return folder


class Conveyor(Reader):
    """A live camera at 200 fps, forever: a good part, or a defective one while `defective`."""

    live = True
    description = "conveyor camera"

    def __init__(self) -> None:
        self.defective = False

    def open(self) -> None:
        pass

    def read(self):
        time.sleep(0.005)
        maker = defect_frame if self.defective else good_frame
        return maker(FRAME_SIZE), ""

    def close(self) -> None:
        pass


class PacedCamera(Reader):
    """A live camera delivering `fps` frames a second: good parts, every tenth one defective."""

    live = True
    description = "paced camera"

    def __init__(self, fps: float, size: tuple[int, int] = FRAME_SIZE) -> None:
        self.period = 1.0 / fps
        self.size = size
        self.next = 0.0
        self.count = 0

    def open(self) -> None:
        self.next = time.monotonic()

    def read(self):
        self.next += self.period
        time.sleep(max(0.0, self.next - time.monotonic()))
        self.count += 1
        maker = defect_frame if self.count % 10 == 0 else good_frame
        return maker(self.size, seed=self.count % 7), ""

    def close(self) -> None:
        pass
