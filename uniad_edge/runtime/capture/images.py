"""Still images as a source: a folder, a glob or one image file, read in name order. A file
that is not an image is a video (`video.video_file`). An image in a format that is not scored
(`image_formats`: GIF, HEIC, ...) is read as an ERROR frame saying so, never skipped silently."""

from __future__ import annotations

import glob
import logging
from pathlib import Path

import cv2
import numpy as np

from ...errors import UniadError
from ...pngcheck import png_problem
from ..image_formats import IMAGE_SUFFIXES, REFUSED_SUFFIXES, refused_format
from .base import Reader, Unreadable
from .video import video_file

log = logging.getLogger(__name__)

LOW_BITS_MARGIN = 2  # warn when a 16-bit frame leaves this many top bits of its depth unused


class ImageListReader(Reader):
    """Images from a folder or glob, in name order, named by their path under `root`.

    16-bit files (12- or 10-bit sensors store their pixels in 16-bit PNG/TIFF) are kept as
    uint16 when `bit_depth` is given, for the detector to scale; without it they are mapped to 8
    bits by their top byte, as OpenCV does, and a file that uses only the low bits is warned
    about once, since its frames then look nearly black to the model.
    """

    def __init__(
        self, paths: list[Path], description: str, root: Path, bit_depth: int | None = None
    ) -> None:
        self.paths = paths
        self.description = description
        self.root = root
        self.bit_depth = bit_depth
        self.skipped = 0
        self.low_bits_warned = False
        self._next = 0

    def open(self) -> None:
        self._next = 0

    def read(self) -> tuple[np.ndarray | Unreadable, str] | None:
        if self._next >= len(self.paths):
            return None
        path = self.paths[self._next]
        self._next += 1
        name = _relative_name(path, self.root)
        image, problem = _decode(path)
        if image is None or image.dtype not in (np.uint8, np.uint16):
            self.skipped += 1
            log.warning("unreadable image %s%s", path, f" ({problem})" if problem else "")
            return Unreadable(
                f"cannot read image {path}: {problem or 'not an 8/16-bit image OpenCV can decode'}"
            ), name
        if image.dtype == np.uint16:
            self._check_low_bits(image, path)
            if self.bit_depth is None:
                image = (image >> 8).astype(np.uint8)
        return image, name

    def _check_low_bits(self, image: np.ndarray, path: Path) -> None:
        depth = self.bit_depth or 16
        peak = int(image.max())
        if self.low_bits_warned or peak >> (depth - LOW_BITS_MARGIN):
            return
        self.low_bits_warned = True
        used = max(peak.bit_length(), 1)
        log.warning(
            "%s is 16-bit but uses only its low %d bits (maximum %d) of %d: it looks like a "
            "%d-bit sensor image; pass --bit-depth %d (bit_depth=) or frames look nearly black",
            path,
            used,
            peak,
            depth,
            max(used, 9),
            max(used, 9),
        )

    def close(self) -> None:
        """Files are opened per read; nothing stays open."""


def _decode(path: Path) -> tuple[np.ndarray | None, str | None]:
    """(pixels, None), or (None, why) for a format that is not scored or a damaged PNG, which
    never reaches libpng (it would print its own stderr line before our warning)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        return None, exc.strerror or str(exc)
    problem = refused_format(data) or png_problem(data)
    if problem is not None or not data.size:
        return None, problem
    return cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR), None


def _image_like(path: Path) -> bool:
    """An image to score, or one in a format that is refused (read, to say so in a record)."""
    return path.suffix.lower() in IMAGE_SUFFIXES or path.suffix.lower() in REFUSED_SUFFIXES


def _relative_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _glob_root(pattern: str) -> Path:
    """The folder above the first wildcard of a glob: frame names are relative to it."""
    parts = Path(pattern).expanduser().parts
    fixed = [p for p in parts[: next(i for i, p in enumerate(parts) if any(c in p for c in "*?["))]]
    return Path(*fixed) if fixed else Path(".")


def is_folder(source: str | int) -> bool:
    return isinstance(source, str) and Path(source).expanduser().is_dir()


def folder(source: str | int, bit_depth: int | None) -> Reader:
    path = Path(str(source)).expanduser()
    images = sorted(p for p in path.iterdir() if _image_like(p))
    return _image_reader(images, str(source), path, bit_depth)


def is_file(source: str | int) -> bool:
    """Checked before globbing: `line[1].mp4` names a file, not a pattern."""
    return isinstance(source, str) and Path(source).expanduser().is_file()


def file(source: str | int, bit_depth: int | None) -> Reader:
    path = Path(str(source)).expanduser()
    if _image_like(path):
        return ImageListReader([path], str(source), path.parent, bit_depth)
    return video_file(str(path), str(source))


def is_glob(source: str | int) -> bool:
    return isinstance(source, str) and any(ch in source for ch in "*?[")


def pattern(source: str | int, bit_depth: int | None) -> Reader:
    text = str(source)
    matches = sorted(Path(p) for p in glob.glob(str(Path(text).expanduser()), recursive=True))
    images = [p for p in matches if _image_like(p)]
    return _image_reader(images, text, _glob_root(text), bit_depth)


def _image_reader(
    images: list[Path], source: str, root: Path, bit_depth: int | None
) -> ImageListReader:
    if not images:
        raise UniadError(
            f"no images in {source!r} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return ImageListReader(images, source, root, bit_depth)
