"""The table of capture sources: which reader a `--camera` index or `--source` string gets.
Entries are tried in order (a file named `line[1].mp4` is a file before it is a glob); a new
source type is one module with a matcher and a factory, plus one entry here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...errors import UniadError
from ...redact import redact_url
from . import gige, images, video
from .base import Reader


@dataclass(frozen=True)
class Source:
    """One kind of source: `matches(text)` says whether it is one, `reader(text, bit_depth)`
    makes its reader (raising `UniadError` with the fix when it cannot)."""

    kind: str
    matches: Callable[[str | int], bool]
    reader: Callable[[str | int, int | None], Reader]


SOURCES: tuple[Source, ...] = (
    Source("camera index", video.is_camera_index, video.camera),
    Source("GStreamer pipeline", video.is_pipeline, video.pipeline),
    Source("GenICam camera", gige.is_gige, gige.gige),  # gige:// before the URL entry
    Source("URL", video.is_url, video.url),
    Source("image folder", images.is_folder, images.folder),
    Source("video or image file", images.is_file, images.file),
    Source("glob", images.is_glob, images.pattern),
)


def make_reader(source: str | int, bit_depth: int | None = None) -> Reader:
    """The reader for a `--camera` index or a `--source` string."""
    for entry in SOURCES:
        if entry.matches(source):
            return entry.reader(source, bit_depth)
    raise UniadError(
        f"source {redact_url(repr(source))} not found: pass a video file, an image folder or "
        "glob, an rtsp:// or http:// URL, a gige:// camera, a GStreamer pipeline, or use "
        "--camera N"
    )
