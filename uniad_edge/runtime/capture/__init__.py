"""Frame sources for the runtime: cameras, video files, image folders/globs, URLs, GStreamer.

`sources.SOURCES` is the table (what a `--source` string is -> its reader), `stream.FrameStream`
the thread that drives a reader, `base` what they share.
"""

from .base import AUTO, FOREVER, Frame, Reader, Unreadable
from .sources import SOURCES, Source, make_reader
from .stream import FrameStream, open_source, utc_stamp

__all__ = [
    "AUTO",
    "FOREVER",
    "SOURCES",
    "Frame",
    "FrameStream",
    "Reader",
    "Source",
    "Unreadable",
    "make_reader",
    "open_source",
    "utc_stamp",
]
