"""Keep what a station must be able to prove later: a JSONL record per frame and NG evidence.

Each log record is one `write` call of one complete line on a file opened for appending, so a
crash or kill loses nothing already scored and never leaves two records on one line. A write
that fails part-way (a full disk) is cut back to the last complete line. A partial last line
found on open (left by a crash or a full disk) is moved aside with a warning, never appended to.
NG frames and their heatmap overlays are written atomically under a name unique to the
verdict, so a folder never holds half an image and no run overwrites another's evidence.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
import time
from collections import deque
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import UniadError
from ..fileio import atomic_path, write_bytes_atomic, write_bytes_new
from .capture import utc_stamp
from .detector import Detection
from .retention import Retention

log = logging.getLogger(__name__)
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class JsonlLog:
    """Append-only JSONL file: a restarted station adds to its log instead of erasing it.

    For a line that runs for months the file follows rotation: `reopen()` (SIGHUP, e.g. from
    logrotate's postrotate) and a log moved or removed under it (noticed by its inode before
    each write) make the next record start the file at `path` again, so records never keep
    going into `log.jsonl.1`; with `max_bytes` it rotates itself (`path` -> `path.1` -> ...,
    keeping `keep` old files) before a record would take it over the limit.
    """

    def __init__(
        self, path: str | os.PathLike[str], max_bytes: int | None = None, keep: int = 5
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep = keep
        self.recovered: Path | None = None
        self.reopened = 0
        self._reopen = self._closed = False
        self._fd: int | None = None
        self._open()
        if stat.S_ISREG(os.fstat(self._fd).st_mode):
            self._recover_partial_line()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UniadError(f"cannot write log {self.path}: {exc.strerror or exc}") from None

    def reopen(self) -> None:
        """Start `path` afresh before the next record (safe from a signal handler: it only
        sets a flag; the writer reopens)."""
        self._reopen = True

    def _moved_away(self) -> bool:
        """The open file is no longer the one at `path` (renamed, removed, replaced)."""
        assert self._fd is not None
        try:
            at_path = os.stat(self.path)
        except FileNotFoundError:
            return True
        mine = os.fstat(self._fd)
        return (at_path.st_dev, at_path.st_ino) != (mine.st_dev, mine.st_ino)

    def _rotate(self) -> None:
        """`path.{keep-1}` -> `path.{keep}`, ..., `path` -> `path.1`; the oldest beyond `keep`
        is replaced."""
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def _follow(self, incoming: int) -> None:
        """Before a write: reopen when asked or when the file was moved away; rotate when the
        record would take the file over `max_bytes`."""
        if self._fd is None:  # a reopen failed (e.g. the folder was gone): try again
            self._open()
        assert self._fd is not None
        mine = os.fstat(self._fd)
        regular = stat.S_ISREG(mine.st_mode)
        size = mine.st_size
        rotate = regular and self.max_bytes is not None and size + incoming > self.max_bytes > 0
        rotate = rotate and size > 0
        if not (rotate or self._reopen or (regular and self._moved_away())):
            return
        self._reopen = False
        if rotate and not self._moved_away():
            self._rotate()
        os.close(self._fd)
        self._fd = None
        self._open()
        self.reopened += 1

    def _recover_partial_line(self) -> None:
        """Move an unterminated last line aside (to LOG.partial-TIME) and cut it from the log."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        with self.path.open("rb") as handle:
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            keep = _end_of_last_line(handle, size)
            handle.seek(keep)
            tail = handle.read(size - keep)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.partial-{stamp}")
        write_bytes_atomic(aside, tail)
        os.ftruncate(self._fd, keep)
        self.recovered = aside
        log.warning(
            "%s ended with a partial record (%d bytes, from a crash or a full disk); moved it to "
            "%s and continued after the last complete line",
            self.path,
            len(tail),
            aside,
        )

    def write(self, record: dict[str, Any]) -> None:
        """One complete line in one write; raises OSError (disk full, I/O error) with the log
        cut back to its last complete line."""
        if self._closed:
            raise UniadError(f"log {self.path} is closed")
        data = (json.dumps(record) + "\n").encode()
        self._follow(len(data))
        assert self._fd is not None
        before = os.fstat(self._fd).st_size
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")
        except OSError:
            self._cut_back(before)
            raise

    def _cut_back(self, size: int) -> None:
        assert self._fd is not None
        try:
            if stat.S_ISREG(os.fstat(self._fd).st_mode) and os.fstat(self._fd).st_size > size:
                os.ftruncate(self._fd, size)
        except OSError as exc:
            log.warning("%s: could not remove a partial record: %s", self.path, exc)

    def close(self) -> None:
        self._closed = True
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _end_of_last_line(handle: Any, size: int, chunk: int = 1 << 16) -> int:
    """Byte offset just after the last newline (0 when there is none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        handle.seek(start)
        block = handle.read(end - start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


FRAME_SUFFIX = "_frame.png"
OVERLAY_SUFFIX = "_overlay.jpg"
MAX_SAME_STEM = 1000


def evidence_stem(camera: str, timestamp: float, index: int) -> str:
    """The file-name stem of one verdict's evidence: camera, capture time (UTC, ms) and frame
    index, e.g. `top_20261129T133846.123Z_00000042`. The index restarts with every run, the
    time does not, so a restarted station never reuses a name; the camera keeps cameras apart,
    and a camera's files sort chronologically."""
    return f"{_safe(camera)}_{utc_stamp(timestamp)}_{index:08d}"


class EvidenceSaver:
    """Writes NG frames (PNG, lossless) and their overlays (JPEG) into one folder under each
    verdict's `evidence_stem`, never replacing a file already there: a name that is taken (a
    clock set back, a second station on the folder) gets a `-N` suffix.

    With a `retention` (`--keep-evidence`) the oldest verdicts' files (the folder's, found at
    start, then each one saved) are removed as soon as a save takes the folder beyond it, so the
    folder stays bounded without a cron job."""

    def __init__(self, folder: str | os.PathLike[str], retention: Retention | None = None) -> None:
        self.folder = Path(folder)
        self.retention = retention
        self.saved = 0
        self.removed = 0
        # Probe now: an unwritable folder must fail at start, not at the first defect hours later.
        with atomic_path(self.folder / ".write-test") as probe:
            probe.write_bytes(b"")
        (self.folder / ".write-test").unlink()
        self._kept: deque[tuple[float, int, list[Path]]] = deque()  # (mtime, bytes, files)
        self._kept_bytes = 0
        if retention is not None:
            for entry in _evidence_in(self.folder):
                self._keep(*entry)
            self._prune()

    def _keep(self, mtime: float, size: int, files: list[Path]) -> None:
        self._kept.append((mtime, size, files))
        self._kept_bytes += size

    def _prune(self) -> None:
        """Remove the oldest verdicts' files while the folder is beyond the retention."""
        limit = self.retention
        assert limit is not None
        oldest_kept = None if limit.age_s is None else time.time() - limit.age_s
        while self._kept and (
            (limit.count is not None and len(self._kept) > limit.count)
            or (limit.size_bytes is not None and self._kept_bytes > limit.size_bytes)
            or (oldest_kept is not None and self._kept[0][0] < oldest_kept)
        ):
            _, size, files = self._kept.popleft()
            self._kept_bytes -= size
            for path in files:
                path.unlink(missing_ok=True)
            self.removed += 1

    def save(self, stem: str, detection: Detection, image: np.ndarray) -> dict[str, str]:
        """Save `image` (the frame as scored, after any crop) and its overlay; their file names
        in the folder, as {"frame": ..., "overlay": ...}."""
        frame, overlay = _encode(".png", image), _encode(".jpg", detection.overlay(image))
        for n in range(MAX_SAME_STEM):
            unique = stem if n == 0 else f"{stem}-{n}"
            names = {"frame": unique + FRAME_SUFFIX, "overlay": unique + OVERLAY_SUFFIX}
            if any((self.folder / name).exists() for name in names.values()):
                continue
            try:
                write_bytes_new(self.folder / names["frame"], frame)
            except FileExistsError:
                continue  # taken meanwhile by another writer, which keeps its files
            try:
                write_bytes_new(self.folder / names["overlay"], overlay)
            except FileExistsError:
                (self.folder / names["frame"]).unlink(missing_ok=True)  # no half pairs
                continue
            except BaseException:  # a full disk: the sink pauses; no frame without its overlay
                (self.folder / names["frame"]).unlink(missing_ok=True)
                raise
            self.saved += 1
            if self.retention is not None:
                self._keep(
                    time.time(),
                    len(frame) + len(overlay),
                    [self.folder / n for n in names.values()],
                )
                self._prune()
            return names
        raise UniadError(
            f"{self.folder}: {MAX_SAME_STEM} files already named {stem}*; "
            "clean up the folder or give each station its own --save-dir"
        )


def _evidence_in(folder: Path) -> list[tuple[float, int, list[Path]]]:
    """The evidence already in `folder`, one entry per verdict (frame and overlay), oldest
    first by modification time."""
    verdicts: dict[str, tuple[float, int, list[Path]]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            suffix = next(
                (s for s in (FRAME_SUFFIX, OVERLAY_SUFFIX) if entry.name.endswith(s)), None
            )
            if suffix is None or not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
            mtime, size, files = verdicts.get(entry.name[: -len(suffix)], (0.0, 0, []))
            verdicts[entry.name[: -len(suffix)]] = (
                max(mtime, st.st_mtime),
                size + st.st_size,
                [*files, Path(entry.path)],
            )
    return sorted(verdicts.values(), key=lambda v: v[0])


def _safe(name: str) -> str:
    return SAFE_NAME.sub("_", name) or "camera"


def _encode(ext: str, image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(ext, image)
    if not ok:
        raise UniadError(f"OpenCV could not encode a {image.shape} image as {ext}")
    return data.tobytes()
