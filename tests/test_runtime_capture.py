"""Frame sources on real OpenCV codecs, and the reader thread's drop/reconnect behaviour."""

from __future__ import annotations

import re
import threading
import time

import cv2
import numpy as np
import pytest
from onnx_fixtures import good_frame
from runtime_helpers import FRAME_SIZE, write_folder, write_video

from uniad_edge.errors import UniadError
from uniad_edge.runtime.capture import FrameStream, Reader, open_source


def test_video_file_delivers_every_frame(tmp_path):
    stream = open_source(str(write_video(tmp_path / "v.mp4", good=5, bad=5)))
    frames = list(stream)
    assert [f.index for f in frames] == list(range(10))
    assert frames[0].image.shape == (*FRAME_SIZE, 3) and stream.dropped == 0


def test_image_folder_and_glob_in_name_order(tmp_path):
    folder = write_folder(tmp_path / "imgs", good=2, bad=2)
    (folder / "c_broken.png").write_bytes(b"not a png")
    (folder / "notes.txt").write_text("ignored")
    (folder / "sub").mkdir()
    (folder / "sub" / "a_good_000.png").write_bytes((folder / "a_good_000.png").read_bytes())
    stream = open_source(str(folder))
    frames = list(stream)
    names = [f.name for f in frames]
    expected = ["a_good_000.png", "a_good_001.png", "b_bad_000.png", "b_bad_001.png"]
    assert names == [*expected, "c_broken.png"]
    assert frames[-1].image is None and "cannot read image" in frames[-1].error
    assert all(f.error is None for f in frames[:-1]) and stream.reader.skipped == 1
    assert [f.name for f in open_source(str(folder / "b_*.png"))] == expected[2:]
    # recursive glob: names are relative to the folder above the wildcard, so they stay unique
    glob_names = [f.name for f in open_source(str(folder / "**" / "a_good_000.png"))]
    assert glob_names == ["a_good_000.png", "sub/a_good_000.png"]


def test_camera_that_does_not_exist_is_retried_then_fails(caplog):
    stream = open_source(97, max_reconnects=1, backoff_s=0.01)
    assert stream.state == "reconnecting"  # a camera may come up after the station
    assert list(stream) == [] and stream.state == "failed"
    assert re.search(r"camera 97 could not be opened.*--source", caplog.text)


def test_unreadable_missing_and_empty_sources(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 4096)
    with pytest.raises(UniadError, match="cannot read video"):
        open_source(str(tmp_path / "junk.mp4"))
    with pytest.raises(UniadError, match="not found"):
        open_source(str(tmp_path / "missing.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UniadError, match="no images"):
        open_source(str(tmp_path / "empty"))


@pytest.mark.skipif(
    "GStreamer:                   YES" in cv2.getBuildInformation(), reason="has GStreamer"
)
def test_gstreamer_pipeline_without_gstreamer_support():
    with pytest.raises(UniadError, match="GStreamer"):
        open_source("videotestsrc ! videoconvert ! appsink")


class FakeLive(Reader):
    """A live camera that delivers `per_session` frames, then fails; reopens `reopen_ok` times."""

    live = True
    description = "fake camera"

    def __init__(self, per_session: int, reopen_ok: int, delay_s: float = 0.0) -> None:
        self.per_session, self.reopen_ok, self.delay_s = per_session, reopen_ok, delay_s
        self.opens = 0
        self.left = 0

    def open(self) -> None:
        if self.opens > self.reopen_ok:
            raise UniadError("fake camera is unplugged")
        self.opens += 1
        self.left = self.per_session

    def read(self):
        time.sleep(self.delay_s)
        if self.left <= 0:
            return None
        self.left -= 1
        return good_frame(FRAME_SIZE), ""

    def close(self) -> None:
        self.left = 0


def test_live_source_reconnects_then_ends_cleanly():
    reader = FakeLive(per_session=3, reopen_ok=1)
    stream = FrameStream(reader, max_reconnects=3, backoff_s=0.01).start()
    frames = []
    for frame in stream:
        frames.append(frame)
        time.sleep(0.005)  # a consumer as fast as the camera: nothing to drop
    assert stream.reconnects == 1
    assert len(frames) + stream.dropped == 6 == stream.captured
    assert reader.opens == 2  # initial open + one successful reconnect, then bounded failures


def test_live_source_drops_stale_frames_and_counts_them(caplog):
    stream = FrameStream(FakeLive(per_session=40, reopen_ok=0, delay_s=0.001), max_reconnects=0)
    stream.start()
    taken = []
    for frame in stream:
        taken.append(frame.index)
        time.sleep(0.02)  # slower than the camera
    assert stream.dropped > 0
    assert len(taken) + stream.dropped == 40
    assert taken == sorted(taken) and taken[-1] == 39  # newest frame always delivered
    assert not [r for r in caplog.records if r.exc_info]  # no error hidden as a capture failure


def test_live_source_without_reconnects_gives_up_cleanly(caplog):
    """Bug 10: max_reconnects=0 raised UnboundLocalError in _reconnect, logged as a failure."""
    stream = FrameStream(FakeLive(per_session=3, reopen_ok=0, delay_s=0.001), max_reconnects=0)
    frames = list(stream.start())
    assert len(frames) >= 1 and stream.state == "failed" and stream.reconnects == 0
    assert "giving up after 0 reconnect attempts" in caplog.text
    assert not [r for r in caplog.records if r.exc_info]


def test_stop_ends_a_live_stream_promptly():
    stream = FrameStream(FakeLive(per_session=10**9, reopen_ok=0, delay_s=0.001)).start()
    assert stream.get(timeout=2) is not None
    threading.Timer(0.05, stream.stop).start()
    start = time.monotonic()
    for _ in stream:
        pass
    assert time.monotonic() - start < 2 and stream.finished


def test_file_source_never_drops_with_a_slow_consumer(tmp_path):
    stream = open_source(str(write_video(tmp_path / "v.avi", good=15, bad=0, fourcc="MJPG")))
    frames = []
    for frame in stream:
        frames.append(frame)
        time.sleep(0.003)
    assert len(frames) == 15 and stream.dropped == 0
    assert all(isinstance(f.image, np.ndarray) for f in frames)


def test_each_source_kind_is_one_table_entry(tmp_path):
    """`--source` strings go through `SOURCES` in order; each kind names its own reader."""
    from uniad_edge.runtime.capture import SOURCES
    from uniad_edge.runtime.capture.gige import GigeReader
    from uniad_edge.runtime.capture.images import ImageListReader
    from uniad_edge.runtime.capture.video import VideoReader

    folder = write_folder(tmp_path / "imgs", good=1, bad=0)
    video = write_video(tmp_path / "line[1].mp4", good=1, bad=0)
    cases = {
        "camera index": ("3", VideoReader),
        "URL": ("rtsp://10.0.0.5/stream", VideoReader),
        "GenICam camera": ("gige://Basler-21234567?exposure=5000", GigeReader),  # not a URL
        "image folder": (str(folder), ImageListReader),
        "video or image file": (str(video), VideoReader),  # a file before a glob
        "glob": (str(folder / "*.png"), ImageListReader),
    }
    kinds = [entry.kind for entry in SOURCES]
    for kind, (text, reader_type) in cases.items():
        chosen = next(entry for entry in SOURCES if entry.matches(text))
        assert chosen.kind == kind, text
        assert isinstance(chosen.reader(text, None), reader_type)
    assert set(cases) | {"GStreamer pipeline"} == set(kinds)
    camera = next(e for e in SOURCES if e.kind == "camera index").reader("3", None)
    assert camera.patience_s == 10.0  # a local device gives up; a URL waits
    assert next(e for e in SOURCES if e.kind == "URL").reader("rtsp://h/s", None).patience_s is None
