"""What every capture source shares: the frame it yields and the reader interface the stream
thread drives. A new source type is a `Reader` in its own module plus one entry in
`sources.SOURCES`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import UniadError

FOREVER = None  # `max_reconnects` value: a live source is reopened until the stream is stopped
AUTO = "auto"  # `max_reconnects` value: each reader's own `patience_s` (forever when None)


@dataclass
class Frame:
    """A captured frame. `index` counts captured frames, so gaps in a log show drops. `image`
    is None when the item could not be read; `error` then says why."""

    index: int
    image: np.ndarray | None
    timestamp: float
    capture_ms: float
    name: str = ""
    error: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)  # the source's own, into the record
    # perf_counter() time the source's own trigger took this frame (a camera's I/O line): its
    # record's trigger_ms counts from here
    triggered: float | None = None


class SourceRefused(UniadError):
    """A live source that answered and refused what was asked of it (a setting the camera
    lacks, a camera another application holds): an error at start, not a retry."""


@dataclass
class Unreadable:
    """What `Reader.read` returns in place of an image that exists but cannot be decoded."""

    reason: str


class Reader(ABC):
    """A blocking frame producer; the `FrameStream` thread drives it."""

    live: bool = False
    description: str = ""
    patience_s: float | None = None  # AUTO policy: give up after this long down (None: never)
    lost: int = 0  # frames the source knows it never delivered (counted as `lost`)

    @abstractmethod
    def open(self) -> None:
        """Open the source, raising `UniadError` with the fix when it cannot be opened."""

    @abstractmethod
    def read(self) -> tuple[np.ndarray | Unreadable, str] | None:
        """Next (image, name), or None at the end of the stream or on failure. An empty name
        lets the stream name the frame by its index and capture time."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or file."""

    def frame_facts(self) -> Mapping[str, Any]:
        """Facts about the frame `read` just returned that belong in its record (a camera's
        own frame id and timestamp); none by default."""
        return {}

    def frame_triggered(self) -> float | None:
        """When the source's own trigger took the frame `read` just returned (perf_counter()
        seconds), for a camera triggered by its I/O line; None by default."""
        return None

    def use_station_trigger(self) -> None:
        """The station scores this source only when triggered (called before `open`): a
        camera that can be triggered takes one frame per `fire()`. Others run freely and the
        station takes the first frame captured after each trigger."""
        return None

    def fire(self) -> None:
        """A station trigger: take one frame now (a camera in software trigger mode)."""
        return None

    def stop(self) -> None:
        """Make a `read` that waits for a frame that may never come (a triggered camera)
        return None soon; called from another thread when the stream stops."""
        return None

    def finished_note(self) -> str | None:
        """At the end of the stream: something the user should know (e.g. a video that ended
        before the frame count its container claims), or None."""
        return None
