"""A file whose name holds glob characters ([1], ?) is that file, not a pattern: operators name
videos `line[1].mp4` and parts `P[17].png`, and globbing them finds nothing."""

from __future__ import annotations

import cv2
from runtime_helpers import FRAME_SIZE, write_video

from uniad_edge.runtime.capture import open_source


def test_video_with_brackets_is_read_as_video(tmp_path):
    folder = tmp_path / "line[1]"
    folder.mkdir()
    video = write_video(folder / "cam[1].mp4", good=2, bad=2)
    frames = list(open_source(str(video)))
    assert len(frames) == 4 and frames[0].image.shape == (*FRAME_SIZE, 3)


def test_image_with_brackets_is_one_frame(tmp_path):
    frames = list(open_source(str(write_video(tmp_path / "v.mp4", good=1, bad=0))))
    image = tmp_path / "part[17]?.png"
    assert cv2.imwrite(str(image), frames[0].image)
    read = list(open_source(str(image)))
    assert len(read) == 1 and read[0].error is None and read[0].name == "part[17]?.png"
